"""Embedding benchmark on the full ViT-B/32 architecture (random weights, same compute as the real one).

In one run, each configuration in its own subprocess (so peak RSS and thread settings are its own):
torch fp32 (the baseline a user would pick: CLIPModel.from_pretrained), ONNX fp32, ONNX int8 (the
shipped quantization), and an image-tower quantization variant (per-tensor weights; bench/int8.py
compares the others).
Measures, on one thread: start-up to first results, image batch 1 and 8, text batch 1 (short query
and 77 tokens), peak RSS, file sizes, and cosine to the torch baseline. Prints a table, writes JSON.

With `--families`, instead: every model family's architecture side by side (random weights, int8, one
thread, each in its own subprocess, the same measurements), each int8 tower's size, and where each
tower can live on Lambda: beside the deps layer within the 250 MB limit, or fetched from S3.

    python bench/embed.py [--repeats 20] [--out bench/results/embed.json]
    python bench/embed.py --families [--repeats 20] [--out bench/results/embed_families.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from layers.build import LIMIT_MB, needs_openclip, place  # noqa: E402

CACHE = ROOT / ".cache" / "models"
MODEL = CACHE / "vit-b-32"
HF_CHECKPOINT = CACHE / "vit-b-32-hf"
VARIANTS = CACHE / "vit-b-32-variants"
SHORT_QUERY = "red shirt"
LONG_QUERY = "a photograph of " + "a small red shirt on a wooden chair next to a window " * 10
TARGETS = {
    "int8_image_b1_ms": 18.0,
    "int8_image_b8_per_image_ms": 13.0,
    "int8_text_short_ms": 3.0,
    "int8_towers_mb": 160.0,
    "int8_start_s": 0.5,
    "int8_speedup_vs_torch_image_b1": 4.0,
}


def fixed_inputs() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((8, 3, 224, 224)).astype(np.float32), [SHORT_QUERY, LONG_QUERY]


def timed(fn, repeats: int, clock=time.perf_counter) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append(clock() - start)
    return median(samples) * 1000


# One model folder per family's architecture (random weights), built by the Makefile's model targets.
FAMILIES = {
    "CLIP ViT-B/32 (OpenAI)": ("vit-b-32", "make model-vit"),
    "SigLIP 2 ViT-B/16": ("vit-b-16-siglip2", "make model-siglip2"),
    "OpenCLIP ViT-B-32 (LAION-2B)": ("vit-b-32-laion", "make model-openclip"),
    "MobileCLIP-S1": ("mobileclip-s1", "make model-openclip"),
    "MobileCLIP-S2": ("mobileclip-s2", "make model-openclip"),
    "MobileCLIP-B": ("mobileclip-b", "make model-openclip"),
}
# Each function's layers without the model files, as `make layers` measured them on 2026-12-04
# (docs/models.md): deps 151.5 MB on arm64 and 167.7 MB on x86_64, their byte code 16.7 MB (search
# function only); every model layer also holds the tokenizer and manifest, and an OpenCLIP or MobileCLIP
# search function the deps-openclip layer. Where the towers go is `layers.build.place`, the build's rule.
BASE_MB = {"arm64": {"search": 168.2, "ingest": 151.5}, "x86_64": {"search": 184.4, "ingest": 167.7}}
OPENCLIP_LAYER_MB = 6.2


# ---------------------------------------------------------------- workers (run in subprocesses)


def worker_family(folder: str, repeats: int) -> dict:
    """Latencies as the process's CPU time: one inference thread, so the time the work took on the
    core, which other processes on this shared machine do not inflate (their wall time would)."""
    from visual_search.embedding import Embedder

    cpu = time.process_time
    start, start_cpu = time.perf_counter(), cpu()
    embedder = Embedder.from_dir(folder, precision="int8", threads=1)
    embedder.load()
    side = embedder.manifest.image.size
    pixels = np.random.default_rng(0).standard_normal((8, 3, side, side)).astype(np.float32)
    embedder.embed_pixels(pixels[:1])
    embedder.embed_texts([SHORT_QUERY])
    started, started_cpu = time.perf_counter() - start, cpu() - start_cpu
    return {
        "start_s": started,
        "start_cpu_s": started_cpu,
        "image_b1_ms": timed(lambda: embedder.embed_pixels(pixels[:1]), repeats, cpu),
        "image_b8_per_image_ms": timed(lambda: embedder.embed_pixels(pixels), max(3, repeats // 4), cpu) / 8,
        "text_short_ms": timed(lambda: embedder.embed_texts([SHORT_QUERY]), repeats, cpu),
        "text_long_ms": timed(lambda: embedder.embed_texts([LONG_QUERY]), repeats, cpu),
        "text_ids": int(embedder.token_ids([SHORT_QUERY]).shape[1]),
        "image_side": side,
        "dim": embedder.dim,
    }


def worker_onnx(precision: str, repeats: int) -> dict:
    from visual_search.embedding import Embedder

    pixels, texts = fixed_inputs()
    start = time.perf_counter()
    embedder = Embedder.from_dir(MODEL, precision=precision, threads=1)
    embedder.load()
    image = embedder.embed_pixels(pixels[:1])
    text = embedder.embed_texts(texts[:1])
    started = time.perf_counter() - start
    return {
        "start_s": started,
        "image_b1_ms": timed(lambda: embedder.embed_pixels(pixels[:1]), repeats),
        "image_b8_ms": timed(lambda: embedder.embed_pixels(pixels), max(3, repeats // 4)),
        "text_short_ms": timed(lambda: embedder.embed_texts([SHORT_QUERY]), repeats),
        "text_77_ms": timed(lambda: embedder.embed_texts([LONG_QUERY]), repeats),
        "image": embedder.embed_pixels(pixels).tolist() if image.size else [],
        "text": embedder.embed_texts(texts).tolist() if text.size else [],
    }


def worker_torch(repeats: int) -> dict:
    import torch
    from transformers import CLIPModel, CLIPTokenizer

    torch.set_num_threads(1)
    pixels, texts = fixed_inputs()
    start = time.perf_counter()
    model = CLIPModel.from_pretrained(HF_CHECKPOINT, attn_implementation="eager").eval()
    tokenizer = CLIPTokenizer.from_pretrained(HF_CHECKPOINT)

    def image(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model.get_image_features(pixel_values=torch.from_numpy(batch)).pooler_output
        return torch.nn.functional.normalize(out, dim=-1).numpy()

    def text(items: list[str]) -> np.ndarray:
        ids = tokenizer(items, padding=True, truncation=True, max_length=77, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = model.get_text_features(input_ids=ids).pooler_output
        return torch.nn.functional.normalize(out, dim=-1).numpy()

    image(pixels[:1])
    text(texts[:1])
    started = time.perf_counter() - start
    return {
        "start_s": started,
        "image_b1_ms": timed(lambda: image(pixels[:1]), repeats),
        "image_b8_ms": timed(lambda: image(pixels), max(3, repeats // 4)),
        "text_short_ms": timed(lambda: text([SHORT_QUERY]), repeats),
        "text_77_ms": timed(lambda: text([LONG_QUERY]), repeats),
        "image": image(pixels).tolist(),
        "text": text(texts).tolist(),
    }


def worker_variant(path: str, repeats: int) -> dict:
    import onnxruntime as ort

    from visual_search.embedding.encoder import session_options

    pixels, _ = fixed_inputs()
    start = time.perf_counter()
    session = ort.InferenceSession(path, session_options(1), providers=["CPUExecutionProvider"])

    def run(batch):
        out = session.run(None, {"pixel_values": batch})[0]
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    run(pixels[:1])
    started = time.perf_counter() - start
    return {
        "start_s": started,
        "image_b1_ms": timed(lambda: run(pixels[:1]), repeats),
        "image_b8_ms": timed(lambda: run(pixels), max(3, repeats // 4)),
        "image": run(pixels).tolist(),
    }


def peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a worker would report its parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_main(args: argparse.Namespace) -> None:
    kind, _, arg = args.worker.partition(":")
    if kind == "torch":
        result = worker_torch(args.repeats)
    elif kind == "family":
        result = worker_family(arg, args.repeats)
    elif kind == "onnx":
        result = worker_onnx(arg, args.repeats)
    else:
        result = worker_variant(arg, args.repeats)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


# ---------------------------------------------------------------- orchestration


def prepare() -> None:
    if not (MODEL / "manifest.json").is_file():
        from visual_search.model_build.build import BuildRequest, build_model

        build_model(BuildRequest(out=MODEL, preset="vit-b-32", seed=0, force=True), log=print)
    if not (HF_CHECKPOINT / "config.json").is_file():
        from visual_search.model_build.source import load_preset

        source = load_preset("vit-b-32", seed=0)
        source.model.save_pretrained(HF_CHECKPOINT)
        source.tokenizer.save_pretrained(HF_CHECKPOINT)
    VARIANTS.mkdir(parents=True, exist_ok=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    specs = {
        "per_tensor": {"per_channel": False, "op_types_to_quantize": ["MatMul", "Gather"]},
    }
    for name, kwargs in specs.items():
        out = VARIANTS / f"image_int8_{name}.onnx"
        if not out.is_file():
            quantize_dynamic(MODEL / "image_fp32.onnx", out, weight_type=QuantType.QInt8, **kwargs)


def run_worker(spec: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", spec, "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cosine(a: list, b: list) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(np.mean(np.sum(x * y, axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embed.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--families", action="store_true", help="every family's architecture, int8")
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
    if args.families:
        out = args.out if args.out != parser.get_default("out") else args.out.with_name("embed_families.json")
        return families_main(args.repeats, out)
    prepare()
    configs = {
        "torch fp32": "torch",
        "onnx fp32": "onnx:fp32",
        "onnx int8": "onnx:int8",
        "int8 per-tensor (image)": f"variant:{VARIANTS / 'image_int8_per_tensor.onnx'}",
    }
    results = {name: run_worker(spec, args.repeats) for name, spec in configs.items()}
    base = results["torch fp32"]
    base_vectors = {"image": base["image"], "text": base["text"]}
    for r in results.values():
        r["image_cos_vs_torch"] = cosine(r.pop("image"), base_vectors["image"])
        if "text" in r:
            r["text_cos_vs_torch"] = cosine(r.pop("text"), base_vectors["text"])
    manifest = json.loads((MODEL / "manifest.json").read_text())
    sizes = {name: (MODEL / name).stat().st_size / 1e6 for name in manifest["files"]}
    sizes.update({p.name: p.stat().st_size / 1e6 for p in VARIANTS.glob("*.onnx")})
    int8 = results["onnx int8"]
    figures = {
        "int8_image_b1_ms": int8["image_b1_ms"],
        "int8_image_b8_per_image_ms": int8["image_b8_ms"] / 8,
        "int8_text_short_ms": int8["text_short_ms"],
        "int8_towers_mb": sizes["image_int8.onnx"] + sizes["text_int8.onnx"],
        "int8_start_s": int8["start_s"],
        "int8_speedup_vs_torch_image_b1": base["image_b1_ms"] / int8["image_b1_ms"],
    }
    verdicts = {
        k: (v >= TARGETS[k] if k.startswith("int8_speedup") else v <= TARGETS[k]) for k, v in figures.items()
    }
    print_table(results, sizes, figures, verdicts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"configs": results, "file_mb": sizes, "figures": figures, "targets": TARGETS, "pass": verdicts}
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {args.out}")


def families_main(repeats: int, out: Path) -> None:
    missing = [f"{name}: {cmd}" for name, (folder, cmd) in FAMILIES.items() if not (CACHE / folder).is_dir()]
    if missing:
        raise SystemExit("build the models first:\n  " + "\n  ".join(missing))
    rows = {}
    for name, (folder, _) in FAMILIES.items():
        manifest = json.loads((CACHE / folder / "manifest.json").read_text())
        row = run_worker(f"family:{CACHE / folder}", repeats)
        row["family"] = manifest.get("family", "clip")
        for tower in ("image", "text"):
            int8 = CACHE / folder / manifest["towers"][tower]["int8"]
            row[f"{tower}_int8_mb"] = int8.stat().st_size / 1e6
        row["tokenizer_mb"] = (CACHE / folder / manifest["tokenizer"]).stat().st_size / 1e6
        row["placement"] = placement(row, needs_openclip(CACHE / folder))
        rows[name] = row
        print(f"measured {name}", flush=True)
    print_families(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"limit_mb": LIMIT_MB, "base_mb": BASE_MB, "models": rows}
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {out}")


def placement(row: dict, openclip: bool) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Per architecture, the towers each function holds in a layer and those it fetches from S3 on first
    use, by the rule `make layers` applies (`layers.build.place`)."""
    towers = {"text": row["text_int8_mb"], "image": row["image_int8_mb"]}
    shared = row["tokenizer_mb"]
    extra = OPENCLIP_LAYER_MB if openclip else 0.0
    return {
        arch: place({"search": base["search"] + shared + extra, "ingest": base["ingest"] + shared}, towers)
        for arch, base in BASE_MB.items()
    }


def print_families(rows: dict) -> None:
    cols = [
        ("start_s", "start s", 8, ".2f"),
        ("start_cpu_s", "start CPU", 10, ".2f"),
        ("image_b1_ms", "img b1 ms", 10, ".1f"),
        ("image_b8_per_image_ms", "img b8/img", 11, ".1f"),
        ("text_short_ms", "txt short", 10, ".1f"),
        ("text_long_ms", "txt long", 9, ".1f"),
        ("peak_rss_mb", "RSS MB", 8, ".0f"),
        ("image_int8_mb", "img MB", 8, ".1f"),
        ("text_int8_mb", "txt MB", 8, ".1f"),
        ("dim", "dim", 5, "d"),
    ]
    print(f"{'model (int8, 1 thread)':30}" + "".join(f"{label:>{w}}" for _, label, w, _ in cols))
    for name, row in rows.items():
        print(f"{name:30}" + "".join(f"{row[key]:>{w}{fmt}}" for key, _, w, fmt in cols))
    print(f"\nplacement (Lambda limit {LIMIT_MB} MB; functions without towers {BASE_MB} MB):")
    for name, row in rows.items():
        print(f"  {name:30} " + "; ".join(
            f"{arch}: {function} holds {plan['holds'] or 'none'}, fetches {plan['fetches'] or 'none'}"
            for arch, functions in row["placement"].items() for function, plan in functions.items()
        ))  # fmt: skip


def print_table(results: dict, sizes: dict, figures: dict, verdicts: dict) -> None:
    cols = [
        "start_s",
        "image_b1_ms",
        "image_b8_ms",
        "text_short_ms",
        "text_77_ms",
        "peak_rss_mb",
        "image_cos_vs_torch",
        "text_cos_vs_torch",
    ]
    print(f"{'config':26}" + "".join(f"{c:>19}" for c in cols))
    for name, r in results.items():
        cells = "".join(f"{r[c]:>19.4f}" if c in r else f"{'-':>19}" for c in cols)
        print(f"{name:26}{cells}")
    print("\nfiles (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(sizes.items())))
    print("\ntargets (1 thread):")
    for key, value in figures.items():
        print(f"  {key:34} {value:9.3f}  target {TARGETS[key]:>6}  {'PASS' if verdicts[key] else 'FAIL'}")


if __name__ == "__main__":
    main()
