"""cdk-nag really gates the synth, and the layer tooling refuses what Lambda would refuse."""

from __future__ import annotations

import re

import pytest
from aws_cdk import App, Stack, aws_sqs

from infra.config import Config
from infra.layers import Layers
from layers import build
from tests.infra.conftest import CONFIGURATIONS, ensure_layers


def test_a_finding_without_an_acknowledgment_fails_the_synth():
    from app import build_app

    app, stack = build_app({"layers_dir": str(ensure_layers()), **CONFIGURATIONS["managed"]})
    aws_sqs.Queue(stack, "Careless")  # no SSL-only policy, no dead-letter queue: AwsSolutions-SQS3/SQS4
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    assert "VisualSearch/Careless/Resource" in str(failure.value)
    assert "AwsSolutions::AwsSolutions-SQS4" in str(failure.value)
    assert "VisualSearch/Search" not in str(failure.value)  # the stack's own findings are acknowledged


def test_missing_layers_are_named_with_the_command_that_builds_them(tmp_path):
    (tmp_path / "deps").mkdir()
    stack = Stack(App(), "Probe")
    with pytest.raises(FileNotFoundError, match=r"no model-text, model-image layer .*make layers"):
        Layers(stack, "Layers", config=Config(layers_dir=str(tmp_path)))


def _sparse(folder, megabytes: float) -> None:
    folder.mkdir(parents=True)
    with open(folder / "blob", "wb") as f:
        f.truncate(int(megabytes * 1e6))


def test_the_layer_build_fails_when_a_function_would_exceed_lambdas_250_mb(tmp_path, capsys):
    _sparse(tmp_path / "deps", 150)
    _sparse(tmp_path / "model-text", 68)
    _sparse(tmp_path / "model-image", 101)  # an image tower a little larger than ViT-B/32's 93 MB
    assert build.report(tmp_path) == 1
    out = capsys.readouterr().out
    assert re.search(r"function ingest .* OVER Lambda's 250 MB limit", out)
    assert re.search(r"function search .*: ok", out)


def test_the_layer_build_passes_when_every_function_fits(tmp_path, capsys):
    _sparse(tmp_path / "deps", 150)
    _sparse(tmp_path / "model-text", 68)
    _sparse(tmp_path / "model-image", 90)
    assert build.report(tmp_path) == 0
    assert "OVER" not in capsys.readouterr().out
