#!/usr/bin/env python3
"""CDK entry point: `cdk deploy` (after `make layers`). Configuration comes from cdk.json's context and
`-c key=value` overrides (see infra/config.py); cdk-nag's AwsSolutions checks run on every synth."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from infra import nag_suppressions
from infra.config import Config
from infra.stack import VisualSearchStack


def build_app(context: dict | None = None) -> tuple[cdk.App, VisualSearchStack]:
    app = cdk.App(context=context or {})
    config = Config.from_context(app.node.try_get_context)
    stack = VisualSearchStack(app, "VisualSearch", config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    nag_suppressions.apply(
        stack, stack.images.bucket, stack.index.domain, config.existing_arn, nodes=config.instance_count
    )
    return app, stack


if __name__ == "__main__":
    build_app()[0].synth()
