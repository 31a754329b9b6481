#!/usr/bin/env python3
"""CDK entry point: `cdk deploy` (after `make layers`). Configuration comes from cdk.json's context and
`-c key=value` overrides (see infra/config.py); cdk-nag's AwsSolutions checks run on every synth."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from infra import nag_suppressions
from infra.config import HEADING, Config, ConfigError
from infra.stack import VisualSearchStack

ROOT = Path(__file__).resolve().parent


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context: the defaults and the feature flags. The CDK CLI passes it to the app itself;
    building the app in-process (the tests) takes it from here, so both synthesize the same stack."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def build_app(
    context: dict[str, Any] | None = None, env: cdk.Environment | None = None
) -> tuple[cdk.App, VisualSearchStack]:
    # Explicit context is the base: what the CLI passes (cdk.json and -c) overrides it.
    app = cdk.App(context={**cdk_json_context(), **(context or {})})
    # All of it: a key that is none of Config's is refused, not ignored (infra/config.py).
    config = Config.from_context(app.node.get_all_context())
    stack = VisualSearchStack(app, "VisualSearch", config=config, env=env or environment(config))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    nag_suppressions.apply(stack, config)
    return app, stack


def environment(config: Config) -> cdk.Environment | None:
    """Looking an existing VPC up needs the account and the region at synth: the CLI passes those of its
    credentials, and caches the answer in cdk.context.json. Every other configuration stays one template
    for any account and region."""
    if not config.vpc_id:
        return None
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    if not (account and region):
        raise ConfigError(
            HEADING + "vpc_id: looking the VPC up needs the account and the region: run the CDK CLI with AWS "
            "credentials for them (it sets CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION)"
        )
    return cdk.Environment(account=account, region=region)


if __name__ == "__main__":
    try:
        app = build_app()[0]
    except ConfigError as refused:  # the message names every bad key: a traceback would bury it
        sys.exit(str(refused))
    app.synth()
