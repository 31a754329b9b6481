"""`cdk synth` with the CDK CLI (package.json pins it): the way an infra team runs the app, for both
vector-index choices, with the layers staged as assets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.infra.conftest import ROOT, ensure_layers

CDK = ROOT / "node_modules" / ".bin" / "cdk"


@pytest.fixture(scope="session")
def cdk_cli():
    if not CDK.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    return CDK


def _synth(cdk_cli, out, *context: str) -> subprocess.CompletedProcess:
    command = [
        str(cdk_cli), "synth", "--no-notices", "--quiet", "--app", f"{sys.executable} app.py",
        "--output", str(out), "-c", f"layers_dir={ensure_layers()}",
        *(arg for pair in context for arg in ("-c", pair)),
    ]  # fmt: skip
    env = {
        **os.environ,
        "CDK_DISABLE_VERSION_CHECK": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("engine", ["managed", "serverless"])
def test_the_cdk_cli_synthesizes_the_app_with_its_layers(engine, cdk_cli, tmp_path):
    result = _synth(cdk_cli, tmp_path, f"index_engine={engine}")
    assert result.returncode == 0, result.stderr[-4000:]
    template = json.loads((tmp_path / "VisualSearch.template.json").read_text())
    kinds = {r["Type"] for r in template["Resources"].values()}
    engine_kind = {
        "managed": "AWS::OpenSearchService::Domain",
        "serverless": "AWS::OpenSearchServerless::Collection",
    }[engine]
    assert {engine_kind, "AWS::ApiGateway::RestApi", "AWS::Lambda::EventSourceMapping"} <= kinds
    staged = [p for p in tmp_path.glob("asset.*") if (p / "python" / "visual_search").is_dir()]
    assert staged, "the deps layer (with the visual_search package) was not staged as an asset"
    assert list(tmp_path.glob("asset.*/model/manifest.json")), "the model layers were not staged"


def test_the_cdk_cli_refuses_a_misspelt_context_key_with_the_closest_known_one(cdk_cli, tmp_path):
    # The CLI adds keys of its own (aws:cdk:*) and cdk.json's feature flags: only ours are refused.
    result = _synth(cdk_cli, tmp_path, "instance_cont=4", "vpc_id=vpc-0123456789abcdef0")
    assert result.returncode != 0
    assert "unknown context key instance_cont (did you mean instance_count?)" in result.stderr
    assert "aws:cdk" not in result.stderr
    assert "@aws-cdk" not in result.stderr
    assert not (tmp_path / "VisualSearch.template.json").exists()
