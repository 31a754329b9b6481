#!/usr/bin/env python3
"""CDK entry point: `cdk deploy` (after `make layers`). Configuration comes from cdk.json's context and
`-c key=value` overrides (see infra/config.py); cdk-nag's AwsSolutions checks run on every synth."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from infra import nag_suppressions
from infra.config import Config, ConfigError
from infra.stack import VisualSearchStack

ROOT = Path(__file__).resolve().parent


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context: the defaults and the feature flags. The CDK CLI passes it to the app itself;
    building the app in-process (the tests) takes it from here, so both synthesize the same stack."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def build_app(context: dict[str, Any] | None = None) -> tuple[cdk.App, VisualSearchStack]:
    # Explicit context is the base: what the CLI passes (cdk.json and -c) overrides it.
    app = cdk.App(context={**cdk_json_context(), **(context or {})})
    # All of it: a key that is none of Config's is refused, not ignored (infra/config.py).
    config = Config.from_context(app.node.get_all_context())
    stack = VisualSearchStack(app, "VisualSearch", config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    nag_suppressions.apply(
        stack, stack.images.bucket, stack.index.domain, config.existing_arn, nodes=config.instance_count
    )
    return app, stack


if __name__ == "__main__":
    try:
        app = build_app()[0]
    except ConfigError as refused:  # the message names every bad key: a traceback would bury it
        sys.exit(str(refused))
    app.synth()
