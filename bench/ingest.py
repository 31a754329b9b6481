"""Ingest throughput per core: images indexed per second for 1 MP and 12 MP JPEGs with the ViT-B/32
architecture (random weights, int8, one inference thread), through the ingest worker's own path (stage:
fetch from the store; apply: decode, embed in groups, write to the embedded index, renditions and the
ledger), batches of 16 as backfill makes them.

Configurations, interleaved round by round (the machine is shared: medians of `--rounds`):
* shipped: what the code does, decoding the next group on a second thread where cores allow;
* shipped_serial: the same on one thread (no decode worker): the per-core figure;
* before: the path as it was before issue #16 section 3 (JPEG draft at >= 4x the model side, renditions
  resampled over every pixel and encoded progressive, one ledger commit per image, one thread, one model
  call per batch; the model is today's);
* baseline_full_decode / baseline_batch_1: the shipped path without JPEG draft scaling / embedding one
  image per model call.
"images per CPU-second" counts the process's CPU time on every thread: the honest per-core figure when
two threads work.

    python bench/ingest.py [--images-1mp 32] [--images-12mp 16] [--rounds 3] [--out bench/results/ingest.json]
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

import contextlib  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visual_search.bootstrap import build_ingest  # noqa: E402
from visual_search.embedding import decode  # noqa: E402
from visual_search.embedding.decode import decode_image  # noqa: E402
from visual_search.ingest import pipeline as ingest_module  # noqa: E402
from visual_search.ingest import renditions  # noqa: E402
from visual_search.ingest.backfill import backfill  # noqa: E402
from visual_search.ledger.sqlite import SqliteLedger  # noqa: E402
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


BATCH = 16  # backfill's default batch


def run(images: list[bytes], config: str) -> dict[str, float]:
    """Index the images into a fresh data dir through the ingest path; ms per image per stage."""
    batch = 1 if config == "baseline_batch_1" else BATCH
    with tempfile.TemporaryDirectory() as tmp, _configured(config):
        services = build_ingest(IngestSettings(model_dir=MODEL, data_dir=Path(tmp), model_threads=1))
        try:
            for i, data in enumerate(images):
                services.store.put(f"bench/{i:04d}.jpg", data)
            services.store.put("warmup/0.jpg", images[0])
            backfill(services.pipeline, services.store, prefix="warmup/")  # sessions loaded, caches warm
            started, cpu_started = time.perf_counter(), time.process_time()
            report = backfill(services.pipeline, services.store, prefix="bench/", batch_size=batch)
            total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            stages = report.ingest.stage_seconds()
        finally:
            services.close()
    if report.outcomes.get("indexed") != len(images):
        raise RuntimeError(f"not every image was indexed: {report.outcomes}")
    n = len(images)
    result = {
        "images_per_s": n / total,
        "images_per_cpu_s": n / cpu,
        "total_ms_per_image": total * 1000 / n,
        "cpu_ms_per_image": cpu * 1000 / n,
    }
    result |= {f"{k}_ms_per_image": v * 1000 / n for k, v in stages.items()}
    return result


@contextlib.contextmanager
def _configured(config: str) -> Iterator[None]:
    with contextlib.ExitStack() as patches:

        def patch(owner: object, name: str, value: object) -> None:
            patches.enter_context(mock.patch.object(owner, name, value))

        if config != "shipped":
            patch(ingest_module, "overlap_workers", lambda _threads: 0)
        if config == "baseline_full_decode":
            patch(ingest_module, "decode_image", _full_decode)
        if config == "before":
            patch(decode, "DRAFT_OVERSAMPLE", 4)
            patch(renditions, "REDUCING_GAP", 2.0)
            patch(renditions, "JPEG_OPTIONS", {**renditions.JPEG_OPTIONS, "progressive": True})
            patch(ingest_module, "EMBED_BATCH", BATCH)
            patch(SqliteLedger, "batch", lambda _self: contextlib.nullcontext())
        yield


def _full_decode(source, limits=None, min_side=None):
    return decode_image(source, limits)  # the baseline: no reduced-scale JPEG decoding


STAGES = ("fetch", "decode", "embed", "write")
CONFIGS = ("shipped", "shipped_serial", "before", "baseline_full_decode", "baseline_batch_1")


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images-1mp", type=int, default=32)
    parser.add_argument("--images-12mp", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    if not (MODEL / "manifest.json").is_file():
        print(f"no model at {MODEL}: run `make model-vit` first", file=sys.stderr)
        return 2
    counts = {"1mp": args.images_1mp, "12mp": args.images_12mp}
    results: dict[str, dict] = {}
    for name, (width, height) in SIZES.items():
        images = [photo(width, height, seed) for seed in range(counts[name])]
        runs: dict[str, list[dict[str, float]]] = {config: [] for config in CONFIGS}
        for _ in range(args.rounds):
            for config in CONFIGS:
                runs[config].append(run(images, config))
        medians = {config: _median(r) for config, r in runs.items()}
        ours, serial, before = medians["shipped"], medians["shipped_serial"], medians["before"]
        full, single = medians["baseline_full_decode"], medians["baseline_batch_1"]
        results[name] = {
            "mean_jpeg_bytes": int(np.mean([len(i) for i in images])),
            **medians,
            # Per core: images per CPU-second (robust to other processes taking the cores), and wall
            # time on one thread; with the decode worker: wall time.
            "per_cpu_s_vs_before": ours["images_per_cpu_s"] / before["images_per_cpu_s"],
            "serial_wall_vs_before": serial["images_per_s"] / before["images_per_s"],
            "wall_vs_before": ours["images_per_s"] / before["images_per_s"],
            "speedup_vs_full_decode": serial["images_per_cpu_s"] / full["images_per_cpu_s"],
            "speedup_vs_batch_1": serial["images_per_cpu_s"] / single["images_per_cpu_s"],
        }
        for config in ("shipped", "shipped_serial", "before"):
            m = medians[config]
            stages = ", ".join(
                f"{s} {m[f'{s}_ms_per_image']:.1f}" for s in ("fetch", "decode", "embed", "write")
            )
            print(
                f"{name:>5} {config:>14}: {m['images_per_s']:5.1f} img/s wall, {m['images_per_cpu_s']:5.1f}"
                f" img per CPU-s ({m['total_ms_per_image']:.1f} ms/img wall: {stages})"
            )
        r = results[name]
        print(
            f"{name:>5}: x{r['per_cpu_s_vs_before']:.2f} images per CPU-second vs before; wall"
            f" x{r['wall_vs_before']:.2f} with the decode worker, x{r['serial_wall_vs_before']:.2f} on one"
            f" thread; x{r['speedup_vs_full_decode']:.2f} vs full-resolution decode,"
            f" x{r['speedup_vs_batch_1']:.2f} vs batch 1 (per CPU-second)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    meta = {"model": MODEL.name, "threads": 1, "rounds": args.rounds, "loadavg_at_end": load}
    args.out.write_text(json.dumps(meta | {"results": results}, indent=2))
    print(f"wrote {args.out} (load average at the end {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
