"""The layers built by `make layers` (layers/build.py): dependencies, and one model tower each."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda
from constructs import Construct

from infra.config import Config

ROOT = Path(__file__).resolve().parent.parent


class Layers(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config):
        super().__init__(scope, construct_id)
        folder = Path(config.layers_dir)
        folder = folder if folder.is_absolute() else ROOT / folder
        missing = [name for name in ("deps", "model-text", "model-image") if not (folder / name).is_dir()]
        if missing:
            raise FileNotFoundError(f"no {', '.join(missing)} layer in {folder}: run `make layers` first")

        def layer(name: str, description: str) -> aws_lambda.LayerVersion:
            return aws_lambda.LayerVersion(
                self,
                name.title().replace("-", ""),
                code=aws_lambda.Code.from_asset(str(folder / name)),
                compatible_runtimes=[aws_lambda.Runtime.PYTHON_3_12],
                compatible_architectures=[config.lambda_architecture],
                description=description,
            )

        self.deps = layer("deps", "Visual Search runtime: the core package, onnxruntime, numpy, Pillow, ...")
        self.model_text = layer("model-text", "CLIP text tower (int8), tokenizer, manifest -> /opt/model")
        self.model_image = layer("model-image", "CLIP image tower (int8), manifest -> /opt/model")
        self.image_tower_dir = folder / "model-image" / "model"
