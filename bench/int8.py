"""int8 image towers side by side: the shipped graph (`visual-search build-model`'s default) against
other onnxruntime recipes and OpenVINO + NNCF (a baseline only: `pip install -e '.[bench]'`).

All variants are loaded in one process with one thread each and run round-robin (batch 1, then batch
8, variant after variant, for every repetition), so a busy machine slows them alike; the figures are
medians. Each call is timed twice: wall clock, and the CPU time of this process (which leaves out the
time other processes hold the core: with one thread per variant, the better figure on a shared
machine). Ratios are to the graph shipped before issue #16, measured in the same run. Cosine is to
the fp32 tower, on 64 photos the calibration did not see. Variants, built on first use and kept in
MODEL-variants/:

- before-16 (the baseline), fused-qattention: see int8_variants.py (needs the `build` extra);
- shipped: the model folder's image_int8.onnx (dynamic int8, QInt8 per-channel weights on MatMul + Gather,
  the patch embedding a MatMul);
- static-qdq-u8s8: the shipped fp32 graph, onnxruntime static QDQ (QUInt8 activations, QInt8 per-channel
  weights, MatMul) calibrated on 32 real photos;
- openvino-nncf: the shipped fp32 graph quantized by NNCF (transformer preset, the same 32 photos), run
  by OpenVINO's CPU plugin with one inference thread.
It also measures onnxruntime's int8 GEMM rate, and so the time the tower's GEMMs alone must take.

    python bench/int8.py [--model .cache/models/vit-b-32] [--repeats 30] [--out bench/results/int8.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from visual_search.embedding import Embedder  # noqa: E402
from visual_search.embedding.encoder import session_options  # noqa: E402
from visual_search.embedding.preprocess import preprocess_batch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_corpus import calibration_images, corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "before-16"
TARGETS = {"speedup_b1": 1.3, "speedup_b8": 1.3, "cosine_mean": 0.999}

Run = Callable[[np.ndarray], np.ndarray]


def calibration_pixels(model: Path) -> list[np.ndarray]:
    spec = Embedder.from_dir(model).manifest.image
    return [preprocess_batch([im], spec) for im in calibration_images(32)]


def build_static_qdq(model: Path, out: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration_pixels(model))

        def get_next(self):
            return next(({"pixel_values": x} for x in self.items), None)

    quantize_static(
        model / "image_fp32.onnx",
        out,
        Photos(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
    )


def build_openvino_nncf(model: Path, out: Path) -> None:
    import nncf
    import openvino as ov

    dataset = nncf.Dataset(calibration_pixels(model))
    fp32 = ov.convert_model(str(model / "image_fp32.onnx"))
    quantized = nncf.quantize(fp32, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=32)
    ov.save_model(quantized, str(out))


def onnxruntime_run(path: Path) -> Run:
    # The runtime's options (one thread), so a variant is timed with the arithmetic the service uses.
    session = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"pixel_values": x})[0]


def openvino_run(path: Path) -> Run:
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    return lambda x: compiled(x)[0]


def variants(model: Path, cache: Path) -> tuple[dict[str, Run], dict[str, dict]]:
    """The runs by variant name, and what each build reported (the fused operators)."""
    import int8_variants

    cache.mkdir(parents=True, exist_ok=True)
    paths = {
        BASELINE: cache / "image_int8_before16.onnx",
        "shipped": model / "image_int8.onnx",
        "fused-qattention": cache / "image_int8_fused_qattention.onnx",
        "static-qdq-u8s8": cache / "image_int8_static_qdq.onnx",
        "openvino-nncf": cache / "image_int8_nncf.xml",
    }
    builders = {
        BASELINE: lambda out: int8_variants.build_before_16(model, out),
        "fused-qattention": lambda out: int8_variants.build_fused_qattention(model, out),
        "static-qdq-u8s8": lambda out: build_static_qdq(model, out) or {},
        "openvino-nncf": lambda out: build_openvino_nncf(model, out) or {},
    }
    # A variant is rebuilt when the model folder's fp32 tower is no longer the one it was built from.
    source = json.loads((model / "manifest.json").read_text())["files"]["image_fp32.onnx"]
    runs, notes = {}, {}
    for name, path in paths.items():
        note = path.with_name(path.name + ".build.json")
        built_from = json.loads(note.read_text()).get("from") if note.is_file() else None
        if name in builders and (not path.is_file() or built_from != source):
            print(f"building {name} -> {path}", flush=True)
            note.write_text(json.dumps({"from": source, **builders[name](path)}))
        notes[name] = json.loads(note.read_text()) if note.is_file() else {}
        runs[name] = (openvino_run if path.suffix == ".xml" else onnxruntime_run)(path)
    return runs, notes


def image_tower_macs(model: Path) -> int:
    """Multiply-accumulates of one image through the shipped tower's GEMMs: the patches, the blocks, the
    last of them for the class token only but for the keys and values (export.ClassTokenLayer)."""
    from visual_search.model_build.presets import PRESETS

    source = json.loads((model / "manifest.json").read_text())["source"]
    vision = PRESETS[source["ref"]]["vision_config"] if source["kind"] == "preset" else None
    if vision is None:
        vision = json.loads((Path(source["ref"]) / "config.json").read_text())["vision_config"]
    width, inner, side, patch = (
        vision[k] for k in ("hidden_size", "intermediate_size", "image_size", "patch_size")
    )
    tokens = (side // patch) ** 2 + 1
    block = tokens * (4 * width * width + 2 * width * inner)  # q, k, v, out; fc1, fc2
    last = tokens * 2 * width * width + (2 * width * width + 2 * width * inner)
    return (vision["num_hidden_layers"] - 1) * block + last + (tokens - 1) * 3 * patch * patch * width


def int8_gemm_rate(repeats: int) -> float:
    """Multiply-accumulates per second of onnxruntime's int8 GEMM (DynamicQuantizeMatMul, the operator the
    towers spend most time in) on a (400 × 768) × (768 × 3072) product, one thread, CPU time."""
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = 400, 768, 3072
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.integers(-127, 128, (k, n)).astype(np.int8), "w"),
        numpy_helper.from_array(np.full(n, 0.01, np.float32), "scale"),
        numpy_helper.from_array(np.zeros(n, np.int8), "zero"),
    ]
    node = helper.make_node(
        "DynamicQuantizeMatMul", ["x", "w", "scale", "zero"], ["y"], domain="com.microsoft"
    )
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        weights,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    run = onnxruntime_run_bytes(helper.make_model(graph, opset_imports=opsets).SerializeToString(), "x")
    x = rng.standard_normal((m, k)).astype(np.float32)
    run(x)
    return m * k * n / median(timed(lambda: run(x))[1] for _ in range(repeats))


def onnxruntime_run_bytes(model: bytes, name: str) -> Run:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {name: x})[0]


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(runs: dict[str, Run], batch: np.ndarray, repeats: int) -> dict[str, dict[str, float]]:
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in runs}
    for run in runs.values():  # warm-up
        run(batch[:1]), run(batch)
    for _ in range(repeats):
        for name, run in runs.items():
            for key, x in (("b1", batch[:1]), ("b8", batch)):
                wall, cpu = timed(lambda run=run, x=x: run(x))
                samples[name].setdefault(f"{key}_wall_ms", []).append(wall * 1000 / len(x))
                samples[name].setdefault(f"{key}_cpu_ms", []).append(cpu * 1000 / len(x))
    return {name: {k: median(v) for k, v in s.items()} for name, s in samples.items()}


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "models" / "vit-b-32")
    parser.add_argument("--cache", type=Path, help="where variants are built (default: MODEL-variants)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--photos", type=int, default=64, help="held-out photos for the cosine to fp32")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "int8.json")
    args = parser.parse_args()
    cache = args.cache or args.model.with_name(args.model.name + "-variants")
    runs, notes = variants(args.model, cache)
    fused = {k: v for k, v in notes["fused-qattention"].items() if k != "from"}
    print(f"fused-qattention: fused operators before quantization {fused}")

    embedder = Embedder.from_dir(args.model, precision="fp32", threads=1)
    photos = [data for _, data in corpus(1000)[-args.photos :]]
    from visual_search.embedding.decode import decode_image

    pixels = preprocess_batch([decode_image(p).image for p in photos], embedder.manifest.image)
    reference = embedder.embed_pixels(pixels)
    cosine = {n: float(np.mean(np.sum(unit(run(pixels)) * reference, axis=1))) for n, run in runs.items()}

    load_before = os.getloadavg()
    figures = measure(runs, pixels[:8], args.repeats)
    load_after = os.getloadavg()
    rate, macs = int8_gemm_rate(4 * args.repeats), image_tower_macs(args.model)
    floor = {
        "gemm_gmac_per_s": rate / 1e9,
        "macs_per_image": macs,
        "gemm_only_ms_per_image": macs / rate * 1000,
    }
    base = figures[BASELINE]
    for name, f in figures.items():
        f["cosine_to_fp32"] = cosine[name]
        for key in ("b1", "b8"):
            for clock in ("wall", "cpu"):
                f[f"{key}_{clock}_speedup"] = base[f"{key}_{clock}_ms"] / f[f"{key}_{clock}_ms"]
    print_table(figures, load_before, load_after, args.repeats)
    gemm_ms = floor["gemm_only_ms_per_image"]
    print(
        f"\nonnxruntime int8 GEMM: {rate / 1e9:.0f} GMAC/s on one thread; the tower's GEMMs alone "
        f"({macs / 1e9:.2f} GMAC per image) take {gemm_ms:.2f} ms per image:\nat most "
        f"{base['b8_cpu_ms'] / gemm_ms:.2f}× {BASELINE} at batch 8 if nothing else took any time\n"
    )
    shipped, openvino = figures["shipped"], figures["openvino-nncf"]
    verdict = {
        f"shipped b1 >= 1.3x {BASELINE} (cpu)": shipped["b1_cpu_speedup"] >= TARGETS["speedup_b1"],
        f"shipped b8 >= 1.3x {BASELINE} (cpu)": shipped["b8_cpu_speedup"] >= TARGETS["speedup_b8"],
        "shipped no slower than openvino-nncf b1 (cpu)": shipped["b1_cpu_ms"] <= openvino["b1_cpu_ms"],
        "shipped no slower than openvino-nncf b8 (cpu)": shipped["b8_cpu_ms"] <= openvino["b8_cpu_ms"],
        "shipped cosine_mean >= 0.999": shipped["cosine_to_fp32"] >= TARGETS["cosine_mean"],
    }
    for what, ok in verdict.items():
        print(f"  {what:50} {'PASS' if ok else 'FAIL'}")
    payload = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "load_average": {"before": load_before, "after": load_after},
        "cpus": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "repeats": args.repeats,
        "photos_for_cosine": len(photos),
        "figures": figures,
        "builds": notes,
        "gemm_floor": floor,
        "targets": TARGETS,
        "pass": verdict,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


def print_table(figures: dict, load_before: tuple, load_after: tuple, repeats: int) -> None:
    print(
        f"\nViT-B/32 image tower, 1 thread, median of {repeats} round-robin repetitions, ratios to {BASELINE}"
    )
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} ({os.cpu_count()} CPUs)\n")
    head = [
        "b1 cpu ms",
        "b1 ×",
        "b8 cpu ms/img",
        "b8 ×",
        "b1 wall ms",
        "b1 ×",
        "b8 wall ms/img",
        "b8 ×",
        "cos fp32",
    ]
    print(f"{'variant':18}" + "".join(f"{h:>15}" for h in head))
    for name, f in figures.items():
        cells = [
            f["b1_cpu_ms"], f["b1_cpu_speedup"], f["b8_cpu_ms"], f["b8_cpu_speedup"],
            f["b1_wall_ms"], f["b1_wall_speedup"], f["b8_wall_ms"], f["b8_wall_speedup"],
        ]  # fmt: skip
        print(f"{name:18}" + "".join(f"{c:>15.2f}" for c in cells) + f"{f['cosine_to_fp32']:>15.5f}")


if __name__ == "__main__":
    main()
