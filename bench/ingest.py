"""Ingest throughput per core: images indexed per second for 1 MP and 12 MP JPEGs with the ViT-B/32
architecture (random weights, int8), through the ingest worker's own path (stage: fetch from the store;
apply: decode, embed in batches, write to the embedded index and the ledger), one thread.

Baselines in the same run, reported as ratios: decoding at full resolution (no JPEG draft scaling) and
embedding one image per model call instead of batches of 8.

    python bench/ingest.py [--images-1mp 32] [--images-12mp 8] [--out bench/results/ingest.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visual_search.bootstrap import build_ingest  # noqa: E402
from visual_search.embedding.decode import decode_image  # noqa: E402
from visual_search.ingest import pipeline as ingest_module  # noqa: E402
from visual_search.ingest.backfill import backfill  # noqa: E402
from visual_search.settings import IngestSettings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / ".cache" / "models" / "vit-b-32"
SIZES = {"1mp": (1152, 864), "12mp": (4000, 3000)}


def photo(width: int, height: int, seed: int) -> bytes:
    """A JPEG with photo-like statistics: smooth structure plus fine noise (what makes JPEG decode cost)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 255, (height // 64, width // 64, 3), dtype=np.uint8))
    base = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    noisy = np.clip(base + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "JPEG", quality=88)
    return out.getvalue()


def run(images: list[bytes], batch: int, full_decode: bool) -> dict[str, float]:
    """Index the images into a fresh data dir through the ingest path; ms per image per stage."""
    with tempfile.TemporaryDirectory() as tmp:
        services = build_ingest(IngestSettings(model_dir=MODEL, data_dir=Path(tmp), model_threads=1))
        for i, data in enumerate(images):
            services.store.put(f"bench/{i:04d}.jpg", data)
        services.store.put("warmup/0.jpg", images[0])
        original = ingest_module.decode_image
        if full_decode:
            ingest_module.decode_image = _full_decode
        try:
            backfill(services.pipeline, services.store, prefix="warmup/")  # sessions loaded, caches warm
            started = time.perf_counter()
            report = backfill(services.pipeline, services.store, prefix="bench/", batch_size=batch)
            total = time.perf_counter() - started
            stages = report.ingest.stage_seconds()
        finally:
            ingest_module.decode_image = original
            services.close()
    if report.outcomes.get("indexed") != len(images):
        raise RuntimeError(f"not every image was indexed: {report.outcomes}")
    n = len(images)
    result = {"images": n, "batch": batch, "images_per_s": n / total, "total_ms_per_image": total * 1000 / n}
    result |= {f"{k}_ms_per_image": v * 1000 / n for k, v in stages.items()}
    return result


def _full_decode(source, limits=None, min_side=None):
    return decode_image(source, limits)  # the baseline: no reduced-scale JPEG decoding


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images-1mp", type=int, default=32)
    parser.add_argument("--images-12mp", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    if not (MODEL / "manifest.json").is_file():
        print(f"no model at {MODEL}: run `make model-vit` first", file=sys.stderr)
        return 2
    counts = {"1mp": args.images_1mp, "12mp": args.images_12mp}
    results: dict[str, dict] = {}
    for name, (width, height) in SIZES.items():
        images = [photo(width, height, seed) for seed in range(counts[name])]
        ours = run(images, batch=8, full_decode=False)
        full = run(images, batch=8, full_decode=True)
        single = run(images, batch=1, full_decode=False)
        results[name] = {
            "mean_jpeg_bytes": int(np.mean([len(i) for i in images])),
            "shipped": ours,
            "baseline_full_decode": full,
            "baseline_batch_1": single,
            "speedup_vs_full_decode": ours["images_per_s"] / full["images_per_s"],
            "speedup_vs_batch_1": ours["images_per_s"] / single["images_per_s"],
        }
        stages = ", ".join(
            f"{s} {ours[f'{s}_ms_per_image']:.1f}" for s in ("fetch", "decode", "embed", "write")
        )
        print(
            f"{name:>5}: {ours['images_per_s']:5.1f} img/s/core"
            f" ({ours['total_ms_per_image']:.1f} ms/img: {stages});"
            f" x{results[name]['speedup_vs_full_decode']:.2f} vs full-resolution decode,"
            f" x{results[name]['speedup_vs_batch_1']:.2f} vs batch 1"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": str(MODEL.name), "threads": 1, "results": results}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
