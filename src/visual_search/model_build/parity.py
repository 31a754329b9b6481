"""Build-time parity: the ONNX towers against the torch reference on a fixed probe set.

The probe set is generated (no downloads): deterministic synthetic pictures and a list of texts. Both
implementations get the same pixels and token ids, so what is measured is the tower conversion and
quantization. Preprocessing and tokenizer parity against transformers are tested separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image, ImageDraw
from transformers import CLIPModel, SiglipModel

from visual_search.embedding.encoder import default_threads, session_options

PROBE_TEXTS = [
    "a photo of a cat",
    "red shirt",
    "a dog running on the beach at sunset",
    "Blue sneakers, size 42!",
    "café au lait ☕",
    "日本の寺",
    "",
    "two people riding bicycles through a crowded market street in the rain " * 4,
]

# Bars a build must meet (issue #2): fp32 is a faithful conversion; int8 stays close on average.
FP32_MIN_COSINE = 0.99999
INT8_MEAN_COSINE = 0.999


def probe_images(n: int = 8, seed: int = 1234) -> list[Image.Image]:
    """Deterministic synthetic RGB pictures: smooth colour fields with shapes, of varied sizes."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        w, h = int(rng.integers(200, 400)), int(rng.integers(200, 400))
        base = rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8)
        im = Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(im)
        for _ in range(3 + i):
            x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
            box = (x0, y0, x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2)))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        images.append(im)
    return images


# A query whose nearest probe item leads the runner-up by more than this has a decided nearest
# neighbour, which conversion and quantization must keep; closer calls are ties any rounding may flip.
ORDER_GAP = 0.01


@dataclass
class TowerParity:
    min_cosine: float
    mean_cosine: float
    nn_kept: float  # share of decided queries whose nearest neighbour is unchanged (the bar: 1.0)
    nn_decided: int  # how many queries had a decided nearest neighbour
    pair_order_kept: float  # share of decided (query, a, b) orders kept (reported, not a bar)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 7) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def reference_embeddings(
    model: CLIPModel | SiglipModel, pixels: np.ndarray, ids: np.ndarray
) -> dict[str, np.ndarray]:
    """transformers' own get_image_features / get_text_features (CLIPModel or SiglipModel, called as
    their documentation calls them: no attention mask), L2-normalised. Shapes (N, D)."""
    with torch.no_grad():
        image = _features(model.get_image_features(pixel_values=torch.from_numpy(pixels)))
        text = _features(model.get_text_features(input_ids=torch.from_numpy(ids)))
    return {"image": _unit(image), "text": _unit(text)}


def onnx_embeddings(path: str, input_name: str, batch: np.ndarray) -> np.ndarray:
    """The tower at `path` run on `batch` with the runtime's session options. Shape (N, D), unit rows."""
    options = session_options(default_threads())
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {input_name: batch})
    return _unit(out.astype(np.float32))


def compare(reference: np.ndarray, candidate: np.ndarray) -> TowerParity:
    """Row cosines, and nearest-neighbour order: each reference row queries the other rows, ranked
    once by reference vectors and once by candidate vectors. Shapes (N, D), N >= 3."""
    cos = np.sum(reference * candidate, axis=1)
    nn_kept = nn_decided = pairs_kept = pairs = 0
    for q in range(len(reference)):
        others = np.delete(np.arange(len(reference)), q)
        ref_sim, cand_sim = reference[others] @ reference[q], candidate[others] @ reference[q]
        first, second = np.argsort(-ref_sim)[:2]
        if ref_sim[first] - ref_sim[second] > ORDER_GAP:
            nn_decided += 1
            nn_kept += int(np.argmax(cand_sim) == first)
        decided = (ref_sim[:, None] - ref_sim[None, :]) > ORDER_GAP
        pairs += int(decided.sum())
        pairs_kept += int((decided & (cand_sim[:, None] > cand_sim[None, :])).sum())
    return TowerParity(
        float(cos.min()),
        float(cos.mean()),
        nn_kept / nn_decided if nn_decided else 1.0,
        nn_decided,
        pairs_kept / pairs if pairs else 1.0,
    )


def check_bars(parity: dict[str, Any]) -> list[str]:
    """Return the failed bars, as sentences; empty when the build is good enough to ship."""
    failures = []
    for tower in ("image", "text"):
        fp32, int8 = parity["fp32"][tower], parity["int8"][tower]
        if fp32["min_cosine"] < FP32_MIN_COSINE:
            failures.append(f"fp32 {tower} tower min cosine {fp32['min_cosine']:.6f} < {FP32_MIN_COSINE}")
        if int8["mean_cosine"] < INT8_MEAN_COSINE:
            failures.append(f"int8 {tower} tower mean cosine {int8['mean_cosine']:.6f} < {INT8_MEAN_COSINE}")
        for precision, got in (("fp32", fp32), ("int8", int8)):
            if got["nn_kept"] < 1.0:
                failures.append(f"{precision} {tower} tower changed nearest-neighbour order on the probe set")
    return failures


def _features(out: Any) -> np.ndarray:
    # transformers 5 returns an output object (projected features in pooler_output); 4.x a tensor.
    tensor = out if isinstance(out, torch.Tensor) else out.pooler_output
    return tensor.float().numpy()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
