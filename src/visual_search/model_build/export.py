"""Export a model's two towers to ONNX, and quantize them to int8 with onnxruntime; CLIP's towers.

Each tower ends in its projection (or head) and an L2 normalisation, so the runtime gets unit vectors
straight from the graph. The image tower has a dynamic batch axis; the text tower dynamic batch and
sequence axes, so a three-word CLIP query runs on a handful of positions instead of 77 (families that
pad to the full context length simply always send it).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import CLIPModel

OPSET = 18

# Measured on ViT-B/32 (bench/embed.py, bench/int8.py): per-channel QInt8 weights on MatMul and Gather,
# activations quantized per batch to uint8 (onnxruntime's U8S8 GEMMs: VNNI on x86, dot-product
# instructions on arm64). The patch embedding is a MatMul (see PatchEmbeddings), so it is an int8 GEMM
# too: 3-8% faster per image than the fp32 Conv it replaces (a ConvInteger was ~15% slower than fp32).
# QUInt8 weights were 2-3x slower than QInt8. On x86 CPUs without VNNI the int8 GEMM saturates, which
# the runtime avoids with a session option (embedding.encoder.session_options); reduce_range (7-bit
# weights) would avoid it on every CPU, but costs the ViT-B/32 text tower 0.9995 -> 0.9989 mean cosine,
# under the bar. Static QDQ calibrated on real photos and the CLIP attention fusion (int8 QAttention) were
# no faster (bench/int8.py, docs/benchmarks.md).
QUANTIZATION = {
    "method": "onnxruntime.quantize_dynamic",
    "weight_type": "QInt8",
    "activations": "QUInt8, per batch (dynamic)",
    "per_channel": True,
    "reduce_range": False,
    "op_types": ["MatMul", "Gather"],
}


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


class PatchEmbeddings(torch.nn.Module):
    """CLIPVisionEmbeddings with the patch Conv written as a MatMul over flattened patches: the same
    arithmetic (the Conv's stride is its kernel size and it has no bias), but quantization makes a
    MatMul an int8 GEMM, whereas the Conv stayed fp32.

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


class ClassTokenLayer(torch.nn.Module):
    """CLIPEncoderLayer computed for the class token only, as the last layer: the pooled output reads
    nothing else, so the other tokens need their keys and values but not their queries, attention
    output or MLP. The same arithmetic for that token, with ~6.6% of ViT-B/32's multiply-adds saved
    (5% faster int8 towers, bench/int8.py). (Stacking the query, key and value projections into one
    GEMM was tried too: no faster.)

    hidden float32 (N, T, W) -> float32 (N, 1, W), the class token's output."""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer_norm1, self.attention = layer.layer_norm1, layer.self_attn
        self.layer_norm2, self.mlp = layer.layer_norm2, layer.mlp

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        attn = self.attention
        n, heads, head_dim = hidden.shape[0], attn.num_heads, attn.head_dim
        normed = self.layer_norm1(hidden)
        # (N, H, 1, d) query of the class token against (N, H, T, d) keys and values of every token.
        query = attn.q_proj(normed[:, :1]).view(n, 1, heads, head_dim).transpose(1, 2)
        keys = attn.k_proj(normed).view(n, -1, heads, head_dim).transpose(1, 2)
        values = attn.v_proj(normed).view(n, -1, heads, head_dim).transpose(1, 2)
        weights = torch.softmax((query @ keys.transpose(-1, -2)) * attn.scale, dim=-1)
        mixed = (weights @ values).transpose(1, 2).reshape(n, 1, heads * head_dim)
        token = hidden[:, :1] + attn.out_proj(mixed)
        return token + self.mlp(self.layer_norm2(token))


class ImageTower(torch.nn.Module):
    """pixel_values float32 (N, 3, S, S) -> embedding float32 (N, D), unit rows. CLIPVisionModel's
    forward with `PatchEmbeddings` and a `ClassTokenLayer` last; the model passed in is not modified."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        vision = model.vision_model
        self.embeddings = PatchEmbeddings(vision.embeddings)
        self.pre_layrnorm = vision.pre_layrnorm
        *inner, last = vision.encoder.layers
        self.layers, self.last = torch.nn.ModuleList(inner), ClassTokenLayer(last)
        self.post_layernorm, self.projection = vision.post_layernorm, model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.pre_layrnorm(self.embeddings(pixel_values))
        for layer in self.layers:
            hidden = layer(hidden, None)
        return _unit(self.projection(self.post_layernorm(self.last(hidden)[:, 0, :])))


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


def export_towers(
    towers: dict[str, torch.nn.Module], folder: Path, image_size: int, context_length: int, fixed_length: bool
) -> dict[str, Path]:
    """Export the "image" tower (pixels (N, 3, S, S)) and the "text" tower (ids (N, L)) as
    `image_fp32.onnx` and `text_fp32.onnx` in `folder`. L is dynamic up to the context length, or
    fixed to it (`fixed_length`) for families whose texts are always padded to it (SigLIP, OpenCLIP)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    image_path, text_path = folder / "image_fp32.onnx", folder / "text_fp32.onnx"
    text_axes = (
        {0: batch} if fixed_length else {0: batch, 1: torch.export.Dim("sequence", min=2, max=context_length)}
    )
    text_example = torch.randint(0, 200, (2, context_length if fixed_length else 7), dtype=torch.int64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(
            towers["image"], torch.rand(2, 3, image_size, image_size), "pixel_values", {0: batch}, image_path
        )
        export_onnx(towers["text"], text_example, "input_ids", text_axes, text_path)
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
