"""Build the Lambda layers without Docker: `make layers [ARCH=arm64|x86_64] [MODEL=<model folder>]`.

* `deps`: the project's runtime dependencies at the versions and hashes of `layers/requirements.lock`
  (compiled from pyproject.toml's ranges by `make lock`, so they are declared once and two builds ship
  the same code) and the `visual_search` package itself, installed with pip for the Lambda platform
  (manylinux wheels only, Python 3.12), then trimmed of what Lambda never uses (tests, caches,
  headers, boto3/botocore which the runtime provides).
* `model-text` and `model-image`: the manifest, tokenizer and one int8 tower each, under `model/`, so
  the files land in /opt/model. The ingest function gets the image tower, the search function the text
  tower; the search function fetches the image tower from S3 on its first image query (see
  `visual_search.embedding.remote_files`), because both towers do not fit in 250 MB beside the deps.

* `deps-bytecode`: the deps layer's byte code, as its own layer that Lambda merges into /opt/python
  beside the sources. /opt is read-only on Lambda, so without it every cold start compiles the runtime
  from source again (`make bench-cold-start-bytecode` measures both). Compiled by a CPython of the
  functions' version (never the build's own Python, unless it is that version) as unchecked-hash pycs:
  valid whatever the files' mtimes once zipped, and not even hashed at import, since a layer never
  changes after it is built (`compile_bytecode`). A layer of its own because it adds 16-17 MB: the
  search function and the authorizer (both answer requests) get it; the ingest function, which works
  from a queue and has 6.3 MB left under the limit with ViT-B/32 on arm64, does not.

Fails with a clear message if a function's layers would exceed Lambda's 250 MB unzipped limit, and
prints the measured size of each layer and function. Records what it built for (architecture, Python
version, model) in `build.json` beside the layers: the CDK app refuses layers built for another
architecture or Python than the functions run on, which would otherwise fail on their first import.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "layers" / "build"
LIMIT_MB = 250
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
PROVIDED_BY_LAMBDA = ("boto3", "botocore", "s3transfer", "jmespath")
# Installed as dependencies but never imported by the functions: the embedded index (the functions use
# OpenSearch), the hub client `tokenizers` declares (and its HTTP stack), the gRPC transport
# `opensearch-py` declares, YAML, the CLI's progress bars, the local server (uvicorn, h11, click),
# onnxruntime's offline tools.
# tests/unit/test_lambda_imports.py proves the functions import without them.
NOT_USED_IN_LAMBDA = (
    "usearch", "numkong", "hf_xet", "huggingface_hub", "fsspec", "filelock", "grpc", "grpcio",
    "opensearch_protobufs", "protobuf", "google", "yaml", "_yaml", "pyyaml", "tqdm",
    "anyio", "httpx2", "httpcore2", "h11", "click", "uvicorn", "bin",
    "onnxruntime/transformers", "onnxruntime/tools", "onnxruntime/quantization", "onnxruntime/datasets",
    "visual_search/models",  # the tiny test model the package ships; functions load /opt/model
)  # fmt: skip
TRIM_DIRS = ("tests", "test", "__pycache__", "include", "benchmarks")
BYTECODE = "deps-bytecode"
FUNCTIONS = {
    "search": ("deps", BYTECODE, "model-text"),
    "ingest": ("deps", "model-image"),
    "authorizer": ("deps", BYTECODE),
}
PYTHON_VERSION = "3.12"  # the functions' Lambda runtime (infra/layers.py RUNTIME)
RECORD = "build.json"
LAMBDA_LAYER_PATH = "/opt/python"  # where Lambda unpacks a layer's python/ folder
LOCK = ROOT / "layers" / "requirements.lock"


def runtime_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        r
        for r in project["dependencies"]
        if not r.split("[")[0].split(">")[0].strip().startswith(PROVIDED_BY_LAMBDA)
    ]


def lock(path: Path = LOCK) -> None:
    """Pin pyproject's runtime ranges, with hashes, for every platform Lambda runs (`make lock`)."""
    with tempfile.NamedTemporaryFile("w", suffix=".in") as requirements:
        requirements.write("\n".join(runtime_requirements()) + "\n")
        requirements.flush()
        subprocess.run(
            [
                sys.executable, "-m", "uv", "pip", "compile", requirements.name, "--universal",
                "--python-version", PYTHON_VERSION, "--generate-hashes", "--no-header", "--quiet",
                "--output-file", str(path),
            ],
            check=True,
        )  # fmt: skip


def build_deps(arch: str, out: Path = OUT) -> Path:
    target = out / "deps" / "python"
    shutil.rmtree(target.parent, ignore_errors=True)
    target.mkdir(parents=True)
    common = [
        sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
        "--platform", PLATFORMS[arch], "--platform", PLATFORMS[arch].replace("2014", "_2_28"),
        "--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:",
        "--no-warn-conflicts",
    ]  # fmt: skip
    subprocess.run([*common, "--require-hashes", "--requirement", str(LOCK)], check=True)
    subprocess.run([*common, "--no-deps", str(ROOT)], check=True)
    trim(target)
    return target.parent


def trim(folder: Path) -> None:
    for name in (*PROVIDED_BY_LAMBDA, *NOT_USED_IN_LAMBDA):
        for path in folder.glob(f"{name}*"):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir() and path.name in TRIM_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        elif path.suffix in (".pyc", ".pyi", ".h", ".hpp") and path.exists():
            path.unlink()


def lambda_python(given: str | None = None) -> str:
    """A CPython of the functions' version (PYTHON_VERSION): `given` (--python, or $LAMBDA_PYTHON), else
    python3.12 on PATH, else one pyenv installed. Its magic number is the one Lambda's runtime reads."""
    candidates = [given or os.environ.get("LAMBDA_PYTHON"), shutil.which(f"python{PYTHON_VERSION}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob(f"{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}"))]
    for candidate in filter(None, candidates):
        found = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if found.returncode == 0 and found.stdout.strip() == PYTHON_VERSION:
            return candidate
        if candidate == given:
            raise SystemExit(f"--python {given} is not a CPython {PYTHON_VERSION}")
    raise SystemExit(
        f"no CPython {PYTHON_VERSION} to compile the layer's byte code for Lambda's python{PYTHON_VERSION}: "
        f"install one (`pyenv install {PYTHON_VERSION}`, or Debian's python{PYTHON_VERSION}) or name it "
        "with --python; --no-bytecode builds without (every cold start then compiles the runtime)"
    )


def compile_bytecode(out: Path, python: str) -> Path:
    """Compile every module of the deps layer as it will be imported from /opt/python, into the
    `deps-bytecode` layer (same relative paths, so Lambda's merge of the two puts each pyc in the
    `__pycache__` beside its source). Unchecked-hash pycs (PEP 552) carry no mtime, so zipping and
    unzipping cannot invalidate them, and the import reads them without even hashing the source. They
    are compiled as if from /opt/python, so their bytes do not depend on where the build ran."""
    sources, target = out / "deps" / "python", out / BYTECODE / "python"
    shutil.rmtree(target.parent, ignore_errors=True)
    subprocess.run(
        [
            python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
            "-s", str(sources), "-p", LAMBDA_LAYER_PATH, str(sources),
        ],
        check=True,
    )  # fmt: skip
    for pyc in sorted(sources.rglob("__pycache__/*.pyc")):
        moved = target / pyc.relative_to(sources)
        moved.parent.mkdir(parents=True, exist_ok=True)
        pyc.rename(moved)
    for cache in sorted(sources.rglob("__pycache__"), reverse=True):
        cache.rmdir()
    return target.parent


def build_model(model_dir: Path, out: Path = OUT) -> list[Path]:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    built = []
    for tower in ("text", "image"):
        target = out / f"model-{tower}" / "model"
        shutil.rmtree(target.parent, ignore_errors=True)
        target.mkdir(parents=True)
        for name in ("manifest.json", manifest["tokenizer"], manifest["towers"][tower]["int8"]):
            shutil.copy2(model_dir / name, target / name)
        built.append(target.parent)
    return built


def record(
    out: Path,
    *,
    architecture: str | None = None,
    model_dir: Path | None = None,
    bytecode: str | None = None,
) -> dict:
    """Update build.json with what was just built (the deps' platform, their byte code: `unchecked-hash`
    or `none`, the model's id)."""
    path = out / RECORD
    built = json.loads(path.read_text()) if path.is_file() else {}
    if architecture is not None:
        built |= {"architecture": architecture, "python": PYTHON_VERSION}
    if bytecode is not None:
        built["bytecode"] = bytecode
    if model_dir is not None:
        built["model_id"] = json.loads((model_dir / "manifest.json").read_text())["model_id"]
    path.write_text(json.dumps(built, indent=2) + "\n")
    return built


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def report(out: Path = OUT) -> int:
    sizes = {layer: size_mb(out / layer) for layer in {n for names in FUNCTIONS.values() for n in names}}
    for layer, mb in sorted(sizes.items()):
        print(f"layer {layer:<13} {mb:7.1f} MB unzipped")
    failed = False
    for function, layers in FUNCTIONS.items():
        total = sum(sizes[layer] for layer in layers) + size_mb(ROOT / "functions" / function)
        verdict = "ok" if total <= LIMIT_MB else f"OVER Lambda's {LIMIT_MB} MB limit"
        print(f"function {function:<10} {total:7.1f} MB unzipped with its layers: {verdict}")
        failed |= total > LIMIT_MB
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--model", type=Path, default=ROOT / "src" / "visual_search" / "models" / "tiny")
    parser.add_argument("--skip-deps", action="store_true", help="rebuild the model layers only")
    parser.add_argument("--trim-only", action="store_true", help="trim an existing deps layer again")
    parser.add_argument("--out", type=Path, default=OUT, help="where the layer folders go")
    parser.add_argument("--lock", action="store_true", help="re-pin layers/requirements.lock from pyproject")
    parser.add_argument("--python", help=f"the CPython {PYTHON_VERSION} that compiles the byte code")
    parser.add_argument("--no-bytecode", action="store_true", help="ship sources only (cold starts compile)")
    args = parser.parse_args()
    if args.lock:
        lock()
        return 0
    if args.trim_only or not args.skip_deps:
        python = None if args.no_bytecode else lambda_python(args.python)  # before the long part
        if args.trim_only:
            trim(args.out / "deps" / "python")
        else:
            build_deps(args.arch, args.out)
            record(args.out, architecture=args.arch)
        shutil.rmtree(args.out / BYTECODE, ignore_errors=True)
        if python is not None:
            compile_bytecode(args.out, python)
        record(args.out, bytecode="none" if python is None else "unchecked-hash")
    build_model(args.model, args.out)
    record(args.out, model_dir=args.model)
    return report(args.out)


if __name__ == "__main__":
    sys.exit(main())
