"""Image-tower recipes tried against the shipped one in bench/int8.py (issue #16); none was measurably
faster, so they live here and not in the build tool. Needs the `build` extra (torch, transformers).

- fused-qattention: the TorchScript exporter's graph (onnxruntime's CLIP attention fusion matches it; it
  matches none of the dynamo exporter's), the transformer optimizer's CLIP fusions (every attention block
  becomes one `Attention` node, counted and reported), its SkipLayerNormalization split back into Add +
  LayerNormalization, then dynamic int8 on MatMul + Attention (-> `QAttention`) + Gather;
- patch-matmul: the shipped recipe, with the patch Conv written as a MatMul over flattened patches so it
  is quantized too.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import onnx
import torch
from onnx import helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import CLIPModel

from visual_search.model_build.export import export_onnx
from visual_search.model_build.source import load_checkpoint, load_preset


class PatchEmbeddings(torch.nn.Module):
    """CLIPVisionEmbeddings with the patch Conv as a MatMul over flattened patches: the same arithmetic
    (stride = kernel, no bias). pixel_values float32 (N, 3, S, S) -> float32 (N, 1 + (S / P)², W)."""

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


class PatchMatMulImageTower(torch.nn.Module):
    """CLIPVisionModel's forward with `PatchEmbeddings`, projected, unit rows: (N, 3, S, S) -> (N, D)."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        vision = model.vision_model
        self.embeddings = PatchEmbeddings(vision.embeddings)
        self.pre_layrnorm, self.encoder = vision.pre_layrnorm, vision.encoder
        self.post_layernorm, self.projection = vision.post_layernorm, model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(
            inputs_embeds=self.pre_layrnorm(self.embeddings(pixel_values))
        ).last_hidden_state
        pooled = self.projection(self.post_layernorm(hidden[:, 0, :]))
        return pooled / pooled.norm(dim=-1, keepdim=True)


def source_model(model_dir: Path) -> CLIPModel:
    """The CLIPModel a model folder was built from (its manifest's source: a preset or a checkpoint)."""
    source = json.loads((model_dir / "manifest.json").read_text())["source"]
    if source["kind"] == "preset":
        return load_preset(source["ref"], source["seed"]).model
    return load_checkpoint(Path(source["ref"])).model


def build_patch_matmul(model_dir: Path, out: Path) -> dict[str, int]:
    fp32 = out.with_name(out.stem + ".fp32.onnx")
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        export_onnx(
            PatchMatMulImageTower(source_model(model_dir)).eval(),
            torch.rand(2, 3, 224, 224),
            "pixel_values",
            {0: batch},
            fp32,
        )
    _quantize(fp32, out, ["MatMul", "Gather"])
    return {}


def build_fused_qattention(model_dir: Path, out: Path) -> dict[str, int]:
    """Returns the fused operators counted in the graph that was quantized (Attention: one per block)."""
    from onnxruntime.transformers.optimizer import optimize_model

    clip = source_model(model_dir)
    fp32, fused = out.with_name(out.stem + ".fp32.onnx"), out.with_name(out.stem + ".fused.onnx")
    with torch.no_grad():
        torch.onnx.export(
            PatchMatMulImageTower(clip).eval(),
            (torch.rand(2, 3, 224, 224),),
            str(fp32),
            dynamo=False,
            input_names=["pixel_values"],
            output_names=["unit_embedding"],
            opset_version=17,
            dynamic_axes={"pixel_values": {0: "batch"}, "unit_embedding": {0: "batch"}},
        )
    vision = clip.config.vision_config
    optimized = optimize_model(
        str(fp32),
        model_type="clip",
        num_heads=vision.num_attention_heads,
        hidden_size=vision.hidden_size,
        opt_level=0,
    )
    counts = Counter(node.op_type for node in optimized.model.graph.node)
    split_skip_layer_norms(optimized.model.graph)
    optimized.save_model_to_file(str(fused))
    fp32.unlink()
    _quantize(fused, out, ["MatMul", "Attention", "Gather"])
    return {op: counts[op] for op in ("Attention", "SkipLayerNormalization", "QuickGelu")}


def _quantize(source: Path, out: Path, op_types: list[str]) -> None:
    quantize_dynamic(
        source,
        out,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=op_types,
        # The fused com.microsoft operators have no ONNX shape inference; their outputs are float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    source.unlink()


def split_skip_layer_norms(graph: onnx.GraphProto) -> None:
    """Replace each SkipLayerNormalization by Add (+ bias Add) and LayerNormalization, in place.

    The CLIP attention fusion only finds attention blocks next to a SkipLayerNormalization, which the
    int8 graph is better without (a wall-clock profile under load put it at ~20% of the time; CPU time
    later showed the whole variant within a few % of the shipped graph either way). The bias is added
    to the MatMul output first, so quantization folds it into the int8 MatMul."""
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
        nodes.append(
            helper.make_node(
                "LayerNormalization",
                [total, gamma, beta],
                [node.output[0]],
                name=node.name,
                axis=-1,
                epsilon=epsilon,
            )
        )
    del graph.node[:]
    graph.node.extend(nodes)
