"""cdk-nag really gates the synth, and the layer tooling refuses what Lambda would refuse."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App, Stack, aws_sqs
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.config import Config
from infra.layers import Layers, LayersMismatch
from layers import build
from locks.compile import pins
from tests.conftest import TINY_MODEL
from tests.infra.conftest import CONFIGURATIONS, ROOT, ensure_layers


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


def _layers(folder, **recorded) -> str:
    for name in ("deps", "model-text", "model-image"):
        (folder / name).mkdir(parents=True)
    if recorded:
        (folder / "build.json").write_text(json.dumps(recorded))
    return str(folder)


def test_layers_built_for_another_architecture_are_refused_with_the_command_that_rebuilds_them(tmp_path):
    folder = _layers(tmp_path, architecture="arm64", python="3.12")
    with pytest.raises(
        LayersMismatch, match=r"built for arm64.*architecture=x86_64.*make layers ARCH=x86_64"
    ):
        Layers(Stack(App(), "Probe"), "Layers", config=Config(layers_dir=folder, architecture="x86_64"))


def test_layers_built_for_another_python_are_refused(tmp_path):
    folder = _layers(tmp_path, architecture="arm64", python="3.11")
    with pytest.raises(LayersMismatch, match=r"built for Python 3\.11, the functions run python3\.12"):
        Layers(Stack(App(), "Probe"), "Layers", config=Config(layers_dir=folder))


def test_layers_without_a_build_record_are_refused(tmp_path):
    with pytest.raises(LayersMismatch, match=r"build\.json is missing.*make layers ARCH=arm64"):
        Layers(Stack(App(), "Probe"), "Layers", config=Config(layers_dir=_layers(tmp_path)))


def test_matching_layers_are_accepted_and_their_record_kept(tmp_path):
    folder = _layers(tmp_path, architecture="x86_64", python="3.12", model_id="m@1")
    layers = Layers(Stack(App(), "Probe"), "Layers", config=Config(layers_dir=folder, architecture="x86_64"))
    assert layers.built["model_id"] == "m@1"


def test_the_layer_build_records_the_platform_it_installed_for_and_the_model(tmp_path):
    build.record(tmp_path, architecture="x86_64")
    recorded = build.record(tmp_path, model_dir=TINY_MODEL)  # a model-only rebuild keeps it
    manifest = json.loads((TINY_MODEL / "manifest.json").read_text())
    assert recorded == {"architecture": "x86_64", "python": "3.12", "model_id": manifest["model_id"]}
    assert json.loads((tmp_path / "build.json").read_text()) == recorded


def test_every_synthesized_function_runs_on_the_architecture_its_layers_were_built_for(synthesized):
    recorded = synthesized.stack.node.find_child("Layers").built["architecture"]
    for name, fn in synthesized.our_functions().items():
        assert fn["Architectures"] == [recorded], name


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


def _locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from layers/requirements.lock."""
    return {canonicalize_name(name): pinned for name, pinned in pins(build.LOCK).items()}


def test_the_lock_pins_every_runtime_dependency_within_pyprojects_range_with_hashes():
    locked = _locked()
    for line in build.runtime_requirements():
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {build.LOCK.name}: run `make lock`"
        version, hashes = locked[name]
        assert requirement.specifier.contains(version), f"{name}=={version} outside {requirement}: make lock"
        assert hashes, name
    assert all(hashes for _, hashes in locked.values())


def test_the_deps_layer_installs_the_locked_versions_and_checks_their_hashes(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(build.subprocess, "run", lambda command, **_: commands.append(command))
    build.build_deps("arm64", tmp_path)
    dependencies, project = commands
    assert dependencies[dependencies.index("--requirement") + 1] == str(build.LOCK)
    assert "--require-hashes" in dependencies
    assert dependencies[dependencies.index("--python-version") + 1] == "3.12"
    assert {"--no-deps", str(ROOT)} <= set(project)  # the project itself adds no unlocked dependency
