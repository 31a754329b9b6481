"""cdk.json sets every feature flag the installed aws-cdk-lib recommends (as `cdk init` would), and the
tests synthesize with the same context the CLI passes."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import aws_cdk

from app import cdk_json_context
from tests.infra.conftest import ROOT


def _recommended_flags(tmp_path: Path) -> dict:
    # aws-cdk-lib keeps the list in its JavaScript (cx-api), which jsii ships inside the Python wheel.
    (bundle,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/cx-api/lib/")]
        tar.extractall(tmp_path, members=members, filter="data")
    features = tmp_path / "package" / "cx-api" / "lib" / "features.js"
    script = f"console.log(JSON.stringify(require({json.dumps(str(features))}).CURRENTLY_RECOMMENDED_FLAGS))"
    return json.loads(subprocess.run(["node", "-e", script], capture_output=True, check=True).stdout)


def test_cdk_json_sets_every_recommended_feature_flag(tmp_path):
    recommended = _recommended_flags(tmp_path)
    assert len(recommended) > 50
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    wrong = {flag: value for flag, value in recommended.items() if context.get(flag) != value}
    assert wrong == {}, "set these in cdk.json's context"


def test_the_log_bucket_uses_a_bucket_policy_not_legacy_acls(managed):
    buckets = managed.resources("AWS::S3::Bucket").values()
    assert all("AccessControl" not in b["Properties"] for b in buckets)


def test_in_process_synthesis_reads_cdk_json_like_the_cli(managed):
    flags = {k: v for k, v in cdk_json_context().items() if k.startswith("@aws-cdk")}
    assert {k: managed.stack.node.try_get_context(k) for k in flags} == flags
