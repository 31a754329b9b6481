"""Orchestrates a model build for every family: load the source, export and quantize both towers, save
the tokenizer, measure parity against the reference, and write the manifest. The output folder appears
atomically, complete or not at all."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from visual_search.embedding.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    image_spec_from,
    sha256_file,
)
from visual_search.embedding.preprocess import preprocess_batch
from visual_search.model_build import BuildRefused, parity
from visual_search.model_build.export import OPSET, QUANTIZATION, export_towers, quantize_tower
from visual_search.model_build.source import LoadedSource, load_checkpoint, load_hub, load_preset

TOKENIZER_FILE = "tokenizer.json"
_BUILT_WITH = {
    "clip": ("torch", "transformers", "onnx", "onnxruntime"),
    "siglip": ("torch", "transformers", "onnx", "onnxruntime"),
    "openclip": ("torch", "open_clip_torch", "timm", "onnx", "onnxruntime"),
}
INPUT_NAMES = {"image": "pixel_values", "text": "input_ids"}


@dataclass
class BuildRequest:
    out: Path
    checkpoint: Path | None = None
    hub_id: str | None = None
    preset: str | None = None
    seed: int = 0
    force: bool = False
    precisions: tuple[str, ...] = ("fp32", "int8")


def build_model(req: BuildRequest, log=print) -> dict[str, Any]:
    """Build a model folder; returns the manifest. Raises BuildRefused with a one-line reason."""
    _check_output(req)
    if sum(x is not None for x in (req.checkpoint, req.hub_id, req.preset)) != 1:
        raise BuildRefused("give exactly one of --checkpoint, --hub or --preset")
    if not set(req.precisions) <= {"fp32", "int8"} or not req.precisions:
        raise BuildRefused(f"precisions must be among fp32,int8, got {','.join(req.precisions)}")
    started = time.perf_counter()
    source = _load(req)
    log(f"loaded {source.model_id} in {time.perf_counter() - started:.1f}s")
    staging = req.out.parent / f".{req.out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        manifest = _build_into(staging, source, req, log)
        _publish(staging, req.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"wrote {req.out} in {time.perf_counter() - started:.1f}s")
    return manifest


def _check_output(req: BuildRequest) -> None:
    if req.out.exists() and not req.force:
        raise BuildRefused(f"output folder {req.out} exists (use --force to replace it)")


def _load(req: BuildRequest) -> LoadedSource:
    if req.preset is not None:
        return load_preset(req.preset, req.seed)
    if req.checkpoint is not None:
        return load_checkpoint(req.checkpoint)
    return load_hub(str(req.hub_id))


def _build_into(folder: Path, source: LoadedSource, req: BuildRequest, log) -> dict[str, Any]:
    image_size = image_spec_from(source.image_spec).size
    text = source.text_spec
    fixed = text["padding"] == "max_length"
    fp32 = export_towers(source.towers(), folder, image_size, text["context_length"], fixed_length=fixed)
    log("exported fp32 towers")
    towers: dict[str, dict[str, str]] = {t: {"fp32": p.name} for t, p in fp32.items()}
    for tower, path in fp32.items():
        int8 = folder / f"{tower}_int8.onnx"
        quantize_tower(path, int8)
        towers[tower]["int8"] = int8.name
    log("quantized int8 towers")
    (folder / TOKENIZER_FILE).write_text(source.tokenizer_json, encoding="utf-8")
    measured = _measure_parity(folder, source, towers)
    failures = parity.check_bars(measured)
    if failures:
        raise BuildRefused("parity below the bar: " + "; ".join(failures))
    log(
        "parity "
        + json.dumps({p: {t: v["mean_cosine"] for t, v in measured[p].items()} for p in ("fp32", "int8")})
    )
    for variants in towers.values():
        for precision in list(variants):
            if precision not in req.precisions:
                (folder / variants.pop(precision)).unlink()
    manifest = _manifest(folder, source, towers, measured)
    (folder / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _measure_parity(folder: Path, source: LoadedSource, towers: dict[str, dict[str, str]]) -> dict[str, Any]:
    pixels = preprocess_batch(parity.probe_images(), image_spec_from(source.image_spec))
    ids = source.reference_ids(parity.PROBE_TEXTS)
    reference = source.reference_embeddings(pixels, ids)
    batches = {"image": pixels, "text": ids}
    result: dict[str, Any] = {"probe": {"images": len(pixels), "texts": len(ids)}}
    for precision in ("fp32", "int8"):
        result[precision] = {}
        for tower in ("image", "text"):
            got = parity.onnx_embeddings(
                str(folder / towers[tower][precision]), INPUT_NAMES[tower], batches[tower]
            )
            result[precision][tower] = parity.compare(reference[tower], got).as_dict()
    return result


def _manifest(folder: Path, source: LoadedSource, towers: dict, measured: dict) -> dict[str, Any]:
    files = sorted(p.name for p in folder.iterdir() if p.is_file())
    return {
        "format_version": FORMAT_VERSION,
        "family": source.family,
        "model_id": source.model_id,
        "source": source.info,
        "embedding_dim": source.embedding_dim,
        "image": source.image_spec,
        "text": source.text_spec,
        "pooling": source.pooling,
        "score": source.score,
        "towers": towers,
        "tokenizer": TOKENIZER_FILE,
        "opset": OPSET,
        "quantization": {**QUANTIZATION, **source.export_notes},
        "parity": {
            "bars": {"fp32_min_cosine": parity.FP32_MIN_COSINE, "int8_mean_cosine": parity.INT8_MEAN_COSINE},
            **measured,
        },
        "files": {name: sha256_file(folder / name) for name in files},
        "built": {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "with": {pkg: version(pkg) for pkg in _BUILT_WITH[source.family]},
        },
    }


def _publish(staging: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        shutil.rmtree(old)
    staging.rename(out)
