"""The layers built by `make layers` (layers/build.py): dependencies, and one model tower each. The
build records the architecture and Python version it installed wheels for; a function on another one
would fail on its first import, so the synth refuses the mismatch instead."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import aws_lambda
from constructs import Construct

from infra.config import Config

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = aws_lambda.Runtime.PYTHON_3_12  # layers/build.py installs wheels for this Python
RECORD = "build.json"  # written by layers/build.py


class LayersMismatch(ValueError):
    """The layers were built for another platform than the functions run on."""


def check_record(folder: Path, config: Config) -> dict:
    """What the layer build recorded, if it matches the functions' architecture and runtime."""
    path = folder / RECORD
    rebuild = f"make layers ARCH={config.architecture}"
    if not path.is_file():
        raise LayersMismatch(f"{path} is missing (layers from an older build?): run `{rebuild}`")
    built = json.loads(path.read_text())
    if built.get("architecture") != config.architecture:
        raise LayersMismatch(
            f"the layers in {folder} were built for {built.get('architecture')}, the functions run on "
            f"architecture={config.architecture}: run `{rebuild}` (or -c architecture=...)"
        )
    if f"python{built.get('python')}" != RUNTIME.name:
        raise LayersMismatch(
            f"the layers in {folder} were built for Python {built.get('python')}, the functions run "
            f"{RUNTIME.name}: run `{rebuild}`"
        )
    return built


class Layers(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config):
        super().__init__(scope, construct_id)
        folder = Path(config.layers_dir)
        folder = folder if folder.is_absolute() else ROOT / folder
        missing = [name for name in ("deps", "model-text", "model-image") if not (folder / name).is_dir()]
        if missing:
            raise FileNotFoundError(f"no {', '.join(missing)} layer in {folder}: run `make layers` first")
        self.built = check_record(folder, config)

        def layer(name: str, description: str) -> aws_lambda.LayerVersion:
            return aws_lambda.LayerVersion(
                self,
                name.title().replace("-", ""),
                code=aws_lambda.Code.from_asset(str(folder / name)),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[config.lambda_architecture],
                description=description,
            )

        self.deps = layer("deps", "Visual Search runtime: the core package, onnxruntime, numpy, Pillow, ...")
        # The deps' byte code, merged by Lambda into /opt/python: without it every cold start compiles
        # the runtime from source (/opt is read-only). Layers built with --no-bytecode have none.
        self.bytecode = (
            layer("deps-bytecode", "Byte code of the runtime layer (CPython 3.12, unchecked-hash pycs)")
            if self.built.get("bytecode") == "unchecked-hash"
            else None
        )
        self.model_text = layer("model-text", "CLIP text tower (int8), tokenizer, manifest -> /opt/model")
        self.model_image = layer("model-image", "CLIP image tower (int8), manifest -> /opt/model")
        self.image_tower_dir = folder / "model-image" / "model"

    @property
    def compiled_deps(self) -> list[aws_lambda.ILayerVersion]:
        """The deps layer and its byte code: for the functions that answer requests (search, authorizer).
        The ingest function has the deps alone: with ViT-B/32 on arm64 the pycs would not fit."""
        return [self.deps, *([self.bytecode] if self.bytecode is not None else [])]
