"""Embedding benchmark on the full ViT-B/32 architecture (random weights, same compute as the real one).

In one run, each configuration in its own subprocess (so peak RSS and thread settings are its own):
torch fp32 (the baseline a user would pick: CLIPModel.from_pretrained), ONNX fp32, ONNX int8 (the
shipped quantization), and an image-tower quantization variant (per-tensor weights; bench/int8.py
compares the others).
Measures, on one thread: start-up to first results, image batch 1 and 8, text batch 1 (short query
and 77 tokens), peak RSS, file sizes, and cosine to the torch baseline. Prints a table, writes JSON.

    python bench/embed.py [--repeats 20] [--out bench/results/embed.json]
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


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return median(samples) * 1000


# ---------------------------------------------------------------- workers (run in subprocesses)


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
    args = parser.parse_args()
    if args.worker:
        return worker_main(args)
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
