"""Export CLIP's two towers to ONNX, and quantize them to int8 with onnxruntime.

Each tower ends in the projection and an L2 normalisation, so the runtime gets unit vectors straight
from the graph. The image tower has a dynamic batch axis; the text tower dynamic batch and sequence
axes, so a three-word query runs on a handful of positions instead of 77.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import CLIPModel

OPSET = 18

# Measured on ViT-B/32 (bench/embed.py, bench/int8.py): per-channel QInt8 weights on MatMul and Gather,
# activations quantized per batch to uint8 (onnxruntime's U8S8 GEMMs: VNNI on x86, dot-product
# instructions on arm64). The patch Conv computes in fp32 (a dynamically quantized Conv was ~15% slower);
# its weights are only *stored* as int8 behind a DequantizeLinear, saving 7 MB. onnxruntime does not fold
# that DequantizeLinear at load (it keeps Q/DQ nodes for its QDQ fusions): it runs on every call, under
# 1% of the time. QUInt8 weights were 2-3x slower than QInt8; reduce_range only helps x86 CPUs without
# VNNI, at a cost in accuracy. No other recipe was measurably faster (bench/int8.py, README): static QDQ
# calibrated on real photos, the CLIP attention fusion (int8 QAttention), the patch Conv as an int8
# MatMul, per-tensor weights were all within a few % of this one.
QUANTIZATION = {
    "method": "onnxruntime.quantize_dynamic",
    "weight_type": "QInt8",
    "activations": "QUInt8, per batch (dynamic)",
    "per_channel": True,
    "reduce_range": False,
    "op_types": ["MatMul", "Gather"],
    "conv_weights": "int8 storage, fp32 compute (DequantizeLinear before the Conv)",
}


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


class ImageTower(torch.nn.Module):
    """pixel_values float32 (N, 3, S, S) -> embedding float32 (N, D), unit rows."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        self.vision_model = model.vision_model
        self.projection = model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixel_values).pooler_output
        return _unit(self.projection(pooled))


class TextTower(torch.nn.Module):
    """input_ids int64 (N, L) -> embedding float32 (N, D), unit rows. Needs no attention mask: the
    causal mask means tokens after the end token never reach the pooled (end-token) position."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        self.text_model = model.text_model
        self.projection = model.text_projection

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        pooled = self.text_model(input_ids=input_ids).pooler_output
        return _unit(self.projection(pooled))


def export_towers(model: CLIPModel, folder: Path, image_size: int) -> dict[str, Path]:
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("sequence", min=2, max=model.config.text_config.max_position_embeddings)
    image_path, text_path = folder / "image_fp32.onnx", folder / "text_fp32.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(
            ImageTower(model).eval(),
            torch.rand(2, 3, image_size, image_size),
            "pixel_values",
            {0: batch},
            image_path,
        )
        export_onnx(
            TextTower(model).eval(),
            torch.randint(0, 1000, (2, 7), dtype=torch.int64),
            "input_ids",
            {0: batch, 1: seq},
            text_path,
        )
    return {"image": image_path, "text": text_path}


def export_onnx(module: torch.nn.Module, example: torch.Tensor, name: str, axes: dict, path: Path) -> None:
    program = torch.onnx.export(
        module,
        (example,),
        dynamo=True,
        input_names=[name],
        # Not "embedding": the exporter already names the patch-embedding value so, and the clash makes
        # onnx shape inference (run by quantize_dynamic) fail with "differ in rank".
        output_names=["unit_embedding"],
        opset_version=OPSET,
        dynamic_shapes={name: axes},
        external_data=False,
        optimize=True,
        verbose=False,
    )
    program.save(str(path), external_data=False)


def quantize_tower(fp32_path: Path, int8_path: Path) -> None:
    quantize_dynamic(
        fp32_path,
        int8_path,
        weight_type=QuantType.QInt8,
        per_channel=QUANTIZATION["per_channel"],
        reduce_range=QUANTIZATION["reduce_range"],
        op_types_to_quantize=QUANTIZATION["op_types"],
    )
    store_conv_weights_as_int8(int8_path)


def store_conv_weights_as_int8(path: Path) -> None:
    """Replace each fp32 Conv weight by int8 (symmetric, per output channel) + DequantizeLinear."""
    model = onnx.load(str(path))
    initializers = {init.name: init for init in model.graph.initializer}
    for position, node in reversed(list(enumerate(model.graph.node))):
        name = node.input[1] if node.op_type == "Conv" and len(node.input) > 1 else None
        if name not in initializers or initializers[name].data_type != onnx.TensorProto.FLOAT:
            continue
        weight = numpy_helper.to_array(initializers[name])
        scale = np.abs(weight).reshape(weight.shape[0], -1).max(axis=1) / 127.0
        scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
        quantized = np.clip(np.round(weight / scale.reshape(-1, *[1] * (weight.ndim - 1))), -127, 127)
        model.graph.initializer.remove(initializers[name])
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(quantized.astype(np.int8), f"{name}_int8"),
                numpy_helper.from_array(scale, f"{name}_scale"),
                numpy_helper.from_array(np.zeros(weight.shape[0], np.int8), f"{name}_zero"),
            ]
        )
        dequantize = onnx.helper.make_node(
            "DequantizeLinear",
            [f"{name}_int8", f"{name}_scale", f"{name}_zero"],
            [name],
            axis=0,
            name=f"{name}_dq",
        )
        model.graph.node.insert(position, dequantize)
    onnx.save(model, str(path))
