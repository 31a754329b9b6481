"""Image-tower recipes measured against the shipped one by bench/int8.py (issue #16). Needs the `build`
extra (torch, transformers).

- before-16: what `build-model` shipped before issue #16, the in-run baseline: transformers' own vision
  forward (the patch embedding an fp32 Conv, its weights stored as int8 behind a DequantizeLinear),
  dynamic int8 on MatMul + Gather;
- fused-qattention: the shipped tower through the TorchScript exporter (onnxruntime's CLIP attention
  fusion matches its graph, none of the dynamo exporter's), the transformer optimizer's CLIP fusions
  (each full attention block becomes one `Attention` node, all but the class-token-only last; counted
  and reported), its SkipLayerNormalization split back into Add + LayerNormalization, then dynamic
  int8 on MatMul + Attention (-> `QAttention`) + Gather. Not faster than the shipped recipe, so not shipped.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import CLIPModel

from visual_search.model_build.export import ImageTower, export_onnx
from visual_search.model_build.source import load_checkpoint, load_preset


class TransformersImageTower(torch.nn.Module):
    """transformers' own vision forward, projected, unit rows: (N, 3, S, S) -> (N, D)."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        self.vision_model, self.projection = model.vision_model, model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.projection(self.vision_model(pixel_values=pixel_values).pooler_output)
        return pooled / pooled.norm(dim=-1, keepdim=True)


def source_model(model_dir: Path) -> CLIPModel:
    """The CLIPModel a model folder was built from (its manifest's source: a preset or a checkpoint)."""
    source = json.loads((model_dir / "manifest.json").read_text())["source"]
    if source["kind"] == "preset":
        return load_preset(source["ref"], source["seed"]).model
    return load_checkpoint(Path(source["ref"])).model


def build_before_16(model_dir: Path, out: Path) -> dict[str, int]:
    fp32 = out.with_name(out.stem + ".fp32.onnx")
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        export_onnx(
            TransformersImageTower(source_model(model_dir)).eval(),
            torch.rand(2, 3, 224, 224),
            "pixel_values",
            {0: batch},
            fp32,
        )
    _quantize(fp32, out, ["MatMul", "Gather"])
    store_conv_weights_as_int8(out)
    return {}


def build_fused_qattention(model_dir: Path, out: Path) -> dict[str, int]:
    """Returns the fused operators counted in the graph that was quantized (Attention: one per block)."""
    from onnxruntime.transformers.optimizer import optimize_model

    clip = source_model(model_dir)
    fp32, fused = out.with_name(out.stem + ".fp32.onnx"), out.with_name(out.stem + ".fused.onnx")
    with torch.no_grad():
        torch.onnx.export(
            ImageTower(clip).eval(),
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
