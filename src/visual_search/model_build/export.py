"""Export CLIP's two towers to ONNX, and quantize them to int8 with onnxruntime.

Each tower ends in the projection and an L2 normalisation, so the runtime gets unit vectors straight
from the graph. The image tower has a dynamic batch axis; the text tower dynamic batch and sequence
axes, so a three-word query runs on a handful of positions instead of 77.

The image tower is quantized after onnxruntime's transformer optimizer has fused its attention (see
`fuse_image_attention`), so the Q/K/V projections and the attention run as one int8 `QAttention`.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import CLIPModel

OPSET = 18
# The image tower goes through the TorchScript exporter: onnxruntime's CLIP attention fusion matches
# its graph (12 of 12 attention blocks fuse on ViT-B/32) but none of the dynamo exporter's.
IMAGE_OPSET = 17

# Measured on ViT-B/32 with bench/int8.py (static QDQ, QUInt8 activations, per-tensor weights, the
# patch Conv and OpenVINO + NNCF beside it; the figures are in the README). Per-channel QInt8 weights,
# dynamic (per batch) uint8 activations: onnxruntime's U8S8 GEMMs, which use VNNI on x86 and the
# dot-product instructions on arm64. reduce_range stays off: it only avoids an overflow on x86 CPUs
# without VNNI, at a cost in accuracy.
QUANTIZATION = {
    "method": "onnxruntime.quantize_dynamic",
    "weight_type": "QInt8",
    "activations": "QUInt8, dynamic (per batch)",
    "per_channel": True,
    "reduce_range": False,
    "op_types": {"image": ["MatMul", "Attention", "Gather"], "text": ["MatMul", "Gather"]},
    "image_fusions": "onnxruntime.transformers.optimizer model_type=clip: Attention, QuickGelu, "
    "LayerNormalization (SkipLayerNormalization split back into Add + LayerNormalization)",
    "image_patch_embedding": "MatMul on flattened patches (was a fp32 Conv)",
}


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


class PatchEmbeddings(torch.nn.Module):
    """CLIPVisionEmbeddings with the patch Conv written as a MatMul over flattened patches: the same
    arithmetic (the Conv's stride is its kernel size and it has no bias), but a MatMul is quantized
    into an int8 GEMM, whereas onnxruntime's ConvInteger is slower than the fp32 Conv it replaces.

    pixel_values float32 (N, 3, S, S) -> float32 (N, 1 + (S / P)², W)."""

    def __init__(self, embeddings: torch.nn.Module):
        super().__init__()
        conv = embeddings.patch_embedding
        self.patch = conv.kernel_size[0]
        # (W, 3, P, P) -> (3·P·P, W), rows in the (channel, y, x) order of the flattened patches below.
        self.weight = torch.nn.Parameter(conv.weight.detach().reshape(conv.out_channels, -1).t().contiguous())
        self.class_embedding = embeddings.class_embedding
        self.positions = torch.nn.Parameter(embeddings.position_embedding.weight.detach().unsqueeze(0))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        n, c, h, w = pixel_values.shape
        p = self.patch
        patches = pixel_values.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        tokens = patches.reshape(n, (h // p) * (w // p), c * p * p) @ self.weight
        return torch.cat([self.class_embedding.expand(n, 1, -1), tokens], dim=1) + self.positions


class ImageTower(torch.nn.Module):
    """pixel_values float32 (N, 3, S, S) -> embedding float32 (N, D), unit rows. CLIPVisionModel's
    forward, with `PatchEmbeddings`; the model passed in is not modified."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        vision = model.vision_model
        self.embeddings = PatchEmbeddings(vision.embeddings)
        self.pre_layrnorm, self.encoder, self.post_layernorm = (
            vision.pre_layrnorm,
            vision.encoder,
            vision.post_layernorm,
        )
        self.projection = model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(
            inputs_embeds=self.pre_layrnorm(self.embeddings(pixel_values))
        ).last_hidden_state
        return _unit(self.projection(self.post_layernorm(hidden[:, 0, :])))


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
        torch.onnx.export(
            ImageTower(model).eval(),
            (torch.rand(2, 3, image_size, image_size),),
            str(image_path),
            dynamo=False,
            input_names=["pixel_values"],
            output_names=["unit_embedding"],
            opset_version=IMAGE_OPSET,
            dynamic_axes={"pixel_values": {0: "batch"}, "unit_embedding": {0: "batch"}},
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


def quantize_tower(tower: str, fp32_path: Path, int8_path: Path, heads: int, width: int) -> dict[str, int]:
    """Write the int8 graph of a tower; returns the fused operators counted in the graph quantized."""
    source, fused = fp32_path, {}
    if tower == "image":
        source = int8_path.with_suffix(".fused.onnx")
        fused = fuse_image_attention(fp32_path, source, heads, width)
    try:
        quantize_dynamic(
            source,
            int8_path,
            weight_type=QuantType.QInt8,
            per_channel=QUANTIZATION["per_channel"],
            reduce_range=QUANTIZATION["reduce_range"],
            op_types_to_quantize=QUANTIZATION["op_types"][tower],
            # The fused com.microsoft operators have no ONNX shape inference; their outputs are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        if source != fp32_path:
            source.unlink(missing_ok=True)
    store_conv_weights_as_int8(int8_path)
    return fused


def fuse_image_attention(fp32_path: Path, out_path: Path, heads: int, width: int) -> dict[str, int]:
    """onnxruntime's transformer optimizer (CLIP fusions) on the image tower: each attention block
    becomes one `Attention` node, which dynamic quantization turns into an int8 `QAttention`. Returns
    the count of each fused operator type in the result, so a build can show that attention fused."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(fp32_path), model_type="clip", num_heads=heads, hidden_size=width, opt_level=0
    )
    split_skip_layer_norms(optimized.model.graph)
    optimized.save_model_to_file(str(out_path))
    counts = Counter(node.op_type for node in optimized.model.graph.node)
    return {op: counts[op] for op in ("Attention", "QuickGelu", "LayerNormalization", "MatMul")}


def split_skip_layer_norms(graph: onnx.GraphProto) -> None:
    """Replace each SkipLayerNormalization by Add (+ bias Add) and LayerNormalization, in place.

    The CLIP attention fusion only finds attention blocks next to a SkipLayerNormalization, but
    onnxruntime's CPU SkipLayerNormalization kernel took ~20% of the int8 image tower's time (profiled
    on ViT-B/32, batch 8) against ~2% for the Add + LayerNormalization it replaced. The bias is added to
    the MatMul output first, so quantization folds it into the int8 MatMul."""
    producers = {out: node for node in graph.node for out in node.output}
    nodes = []
    for node in graph.node:
        if node.op_type != "SkipLayerNormalization":
            nodes.append(node)
            continue
        x, skip, gamma, beta = node.input[:4]
        bias = node.input[4] if len(node.input) > 4 and node.input[4] else None
        total = node.output[3] if len(node.output) > 3 and node.output[3] else f"{node.name}_sum"
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        if bias:
            matmul_first = getattr(producers.get(x), "op_type", None) == "MatMul"
            projected, residual = (x, skip) if matmul_first else (skip, x)
            biased = f"{node.name}_biased"
            nodes.append(helper.make_node("Add", [projected, bias], [biased], name=f"{node.name}_bias"))
            nodes.append(helper.make_node("Add", [biased, residual], [total], name=f"{node.name}_skip"))
        else:
            nodes.append(helper.make_node("Add", [x, skip], [total], name=f"{node.name}_skip"))
        norm = helper.make_node(
            "LayerNormalization",
            [total, gamma, beta],
            [node.output[0]],
            name=node.name,
            axis=-1,
            epsilon=epsilon,
        )
        nodes.append(norm)
    del graph.node[:]
    graph.node.extend(nodes)


def store_conv_weights_as_int8(path: Path) -> None:
    """Replace each fp32 Conv weight by int8 (symmetric, per output channel) + DequantizeLinear: for a
    checkpoint whose graph still has a Conv, it is stored in 1/4 of the space and computes in fp32."""
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
