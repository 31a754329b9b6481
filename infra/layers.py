"""The layers built by `make layers` (layers/build.py): dependencies, their byte code, the model's
files for each function, and the openclip extra for a model that needs it. The build records the
architecture and Python version it installed wheels for (a function on another one would fail on its
first import, so the synth refuses the mismatch instead), and each function's layers and the towers it
fetches, which the stack follows."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import aws_lambda
from constructs import Construct

from infra.config import Config
from layers import build

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
        self.placement = build.placement(folder)
        self.published_dir = build.published_folder(folder)

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
        text, image = ("text" in self.fetches("search")), ("image" in self.fetches("ingest"))
        self.model_text = layer(
            "model-text",
            "Tokenizer, manifest -> /opt/model (the text tower is fetched from S3)"
            if text
            else "CLIP text tower (int8), tokenizer, manifest -> /opt/model",
        )
        self.model_image = layer(
            "model-image",
            "Manifest -> /opt/model (the image tower is fetched from S3)"
            if image
            else "CLIP image tower (int8), manifest -> /opt/model",
        )
        used = {name for placed in self.placement.values() for name in placed["layers"]}
        # open_clip's text cleaning (ftfy), for the search function of a model that asks for it.
        self.openclip = (
            layer(build.OPENCLIP, "The openclip extra: ftfy, for OpenCLIP models' text queries")
            if build.OPENCLIP in used
            else None
        )

    def of(self, function: str) -> list[aws_lambda.ILayerVersion]:
        """The function's layers, as the build placed them: the deps and, for the functions that answer
        requests (search, authorizer), their byte code; its model layer; the openclip extra if any."""
        built = {
            "deps": self.deps,
            build.BYTECODE: self.bytecode,
            "model-text": self.model_text,
            "model-image": self.model_image,
            build.OPENCLIP: self.openclip,
        }
        found = [built[name] for name in self.placement[function]["layers"]]
        if None in found:
            raise LayersMismatch(
                f"{RECORD} gives {function} a layer the build did not make: run `make layers`"
            )
        return [layer for layer in found if layer is not None]

    def fetches(self, function: str) -> list[str]:
        """The towers the function fetches from the bucket on first use ("text", "image")."""
        return list(self.placement[function]["fetches"])
