"""Build the Lambda layers without Docker: `make layers [ARCH=arm64|x86_64] [MODEL=<model folder>]`.

* `deps`: the project's runtime dependencies at the versions and hashes of `layers/requirements.lock`
  (compiled from pyproject.toml's ranges by `make lock`, so they are declared once and two builds ship
  the same code) and the `visual_search` package itself, installed with pip for the Lambda platform
  (manylinux wheels only, Python 3.12), then trimmed of what Lambda never uses (tests, caches,
  headers, boto3/botocore which the runtime provides).
* `deps-openclip`: the `openclip` extra (ftfy, which open_clip's text cleaning needs) at the versions
  and hashes of `layers/requirements-openclip.lock`, built only for a model whose manifest asks for that
  cleaning (`text.clean`: OpenCLIP and MobileCLIP), with its byte code beside it, and given to the search
  function alone, the only one that tokenizes text: 6.2 MB (ftfy 0.2 MB, wcwidth 6.0 MB) that the ingest
  function, 6 MB under the limit with ViT-B/32, never imports.
* `model-text` and `model-image`: the manifest and the tokenizer, plus the int8 towers the function
  holds, under `model/`, so the files land in /opt/model. The search function's layer is `model-text`,
  the ingest function's `model-image`. Which towers sit in them is decided once, from the built sizes
  (`place`): the search function holds the text tower and the ingest function the image tower if each
  keeps its function within 250 MB; a tower that does not fit, and the search function's image tower
  always, goes to `model-remote`, which the stack publishes to the image bucket, and is fetched on first
  use (see `visual_search.embedding.remote_files`). The decision is recorded in `build.json`, from
  which the stack gives each function its layers and, when it fetches any tower, the bucket's URL.

* `deps-bytecode`: the deps layer's byte code, as its own layer that Lambda merges into /opt/python
  beside the sources. /opt is read-only on Lambda, so without it every cold start compiles the runtime
  from source again (`make bench-cold-start-bytecode` measures both). Compiled by a CPython of the
  functions' version (never the build's own Python, unless it is that version) as unchecked-hash pycs:
  valid whatever the files' mtimes once zipped, and not even hashed at import, since a layer never
  changes after it is built (`compile_bytecode`). A layer of its own because it adds 16-17 MB: the
  search function and the authorizer (both answer requests) get it; the ingest function, which works
  from a queue and has 6.3 MB left under the limit with ViT-B/32 on arm64, does not.

Fails with a clear message if a function's layers would exceed Lambda's 250 MB unzipped limit, or the
towers it fetches Lambda's default 512 MB /tmp, and prints the measured size of each layer and function.
Records what it built for (architecture, Python version, model, placement) in `build.json` beside the
layers: the CDK app refuses layers built for another architecture or Python than the functions run on,
which would otherwise fail on their first import.
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
from collections.abc import Iterable, Mapping
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
OPENCLIP = "deps-openclip"
# Each function's layers, in the order Lambda merges them; a build has those it made (no byte code with
# --no-bytecode, the openclip extra only for a model that needs it).
FUNCTIONS = {
    "search": ("deps", BYTECODE, "model-text", OPENCLIP),
    "ingest": ("deps", "model-image"),
    "authorizer": ("deps", BYTECODE),
}
# The towers each function runs, in the order it needs them (the search function needs the text tower
# for every text query, the image tower for image queries only), and the layer holding those it keeps.
TOWERS = {"search": ("text", "image"), "ingest": ("image",)}
MODEL_LAYERS = {"search": "model-text", "ingest": "model-image"}
# Fetched even where it would fit: beside the deps, their byte code and the smallest text tower measured
# (65 MB) the search function has 17 MB left, and the smallest image tower is 73 MB, so only the tiny
# test model's would fit, and fetching it too keeps the tests on the path every real deployment takes.
ALWAYS_FETCHED = {("search", "image")}
PUBLISHED = "model-remote"  # the towers some function fetches, with the manifest: the stack publishes it
TMP_MB = 512  # Lambda's default /tmp, where a function keeps the towers it fetched
PYTHON_VERSION = "3.12"  # the functions' Lambda runtime (infra/layers.py RUNTIME)
RECORD = "build.json"
LAMBDA_LAYER_PATH = "/opt/python"  # where Lambda unpacks a layer's python/ folder
LOCK = ROOT / "layers" / "requirements.lock"
OPENCLIP_LOCK = ROOT / "layers" / "requirements-openclip.lock"


def runtime_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        r
        for r in project["dependencies"]
        if not r.split("[")[0].split(">")[0].strip().startswith(PROVIDED_BY_LAMBDA)
    ]


def openclip_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["openclip"])


def lock(path: Path = LOCK, openclip_path: Path = OPENCLIP_LOCK) -> None:
    """Pin pyproject's runtime ranges, with hashes, for every platform Lambda runs (`make lock`); then the
    openclip extra, constrained to those pins so the two layers never disagree on a shared package."""
    for requirements, output, constraints in (
        (runtime_requirements(), path, []),
        (openclip_requirements(), openclip_path, ["--constraint", str(path)]),
    ):
        with tempfile.TemporaryDirectory() as folder:
            # Named, and run from its folder: the lock's "# via" lines are the same from one run to the next.
            source = Path(folder) / f"{output.stem}.in"
            source.write_text("\n".join(requirements) + "\n")
            subprocess.run(
                [
                    sys.executable, "-m", "uv", "pip", "compile", source.name, *constraints, "--universal",
                    "--python-version", PYTHON_VERSION, "--generate-hashes", "--no-header", "--quiet",
                    "--output-file", str(output.resolve()),
                ],
                check=True,
                cwd=folder,
            )  # fmt: skip


def _pip_install(arch: str, target: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
        "--platform", PLATFORMS[arch], "--platform", PLATFORMS[arch].replace("2014", "_2_28"),
        "--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:",
        "--no-warn-conflicts",
    ]  # fmt: skip


def build_deps(arch: str, out: Path = OUT) -> Path:
    target = out / "deps" / "python"
    shutil.rmtree(target.parent, ignore_errors=True)
    target.mkdir(parents=True)
    common = _pip_install(arch, target)
    subprocess.run([*common, "--require-hashes", "--requirement", str(LOCK)], check=True)
    subprocess.run([*common, "--no-deps", str(ROOT)], check=True)
    trim(target)
    return target.parent


def needs_openclip(model_dir: Path) -> bool:
    """Whether the model's tokenizer cleans text with ftfy (embedding/text_clean.py)."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return manifest["text"].get("clean", "none") == "openclip"


def build_openclip(arch: str, out: Path, python: str | None) -> Path:
    """The openclip extra as a layer of its own, its byte code beside its sources (`python`: None for
    none). Only the search function gets it: ingest and the authorizer never tokenize text."""
    target = out / OPENCLIP / "python"
    shutil.rmtree(target.parent, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(
        [*_pip_install(arch, target), "--require-hashes", "--requirement", str(OPENCLIP_LOCK)], check=True
    )
    trim(target)
    if python is not None:
        _compileall(python, target)
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
    _compileall(python, sources)
    for pyc in sorted(sources.rglob("__pycache__/*.pyc")):
        moved = target / pyc.relative_to(sources)
        moved.parent.mkdir(parents=True, exist_ok=True)
        pyc.rename(moved)
    for cache in sorted(sources.rglob("__pycache__"), reverse=True):
        cache.rmdir()
    return target.parent


def _compileall(python: str, sources: Path) -> None:
    subprocess.run(
        [
            python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
            "-s", str(sources), "-p", LAMBDA_LAYER_PATH, str(sources),
        ],
        check=True,
    )  # fmt: skip


def place(base_mb: Mapping[str, float], tower_mb: Mapping[str, float]) -> dict[str, dict[str, list[str]]]:
    """Which towers each function holds in its model layer and which it fetches: in the order the
    function needs them, a tower goes in if the function stays within LIMIT_MB with it; any other (and
    the search function's image tower, ALWAYS_FETCHED) is fetched. `base_mb`: each function's size with
    its layers and code but no tower; `tower_mb`: each int8 tower's file. E.g. MobileCLIP-S2 on arm64:
    the search function, 178 MB without towers, holds the 65 MB text tower (243 MB); the ingest
    function, 155 MB, cannot take the 123 MB image tower and fetches it."""
    plan = {}
    for function, total in base_mb.items():
        holds, fetches = [], []
        for tower in TOWERS.get(function, ()):
            if (function, tower) not in ALWAYS_FETCHED and total + tower_mb[tower] <= LIMIT_MB:
                holds.append(tower)
                total += tower_mb[tower]
            else:
                fetches.append(tower)
        plan[function] = {"holds": holds, "fetches": fetches}
    return plan


def build_model(model_dir: Path, out: Path = OUT) -> dict[str, dict[str, list[str]]]:
    """The model layers and the folder the stack publishes, placed by `place` from the sizes of the
    layers already built (deps, byte code, openclip) and of the towers; returns each function's layers,
    the towers it holds and those it fetches, as build.json records them."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    towers = {tower: manifest["towers"][tower]["int8"] for tower in ("text", "image")}
    # Every copy of the model is a model folder the runtime can load: manifest and tokenizer first.
    shared = ("manifest.json", manifest["tokenizer"])
    for layer in MODEL_LAYERS.values():
        _copy(model_dir, out / layer / "model", shared)
    plan = place(
        {function: function_mb(out, function) for function in FUNCTIONS},
        {tower: (model_dir / name).stat().st_size / 1e6 for tower, name in towers.items()},
    )
    for function, placed in plan.items():
        for tower in placed["holds"]:
            shutil.copy2(model_dir / towers[tower], out / MODEL_LAYERS[function] / "model")
    fetched = sorted({tower for placed in plan.values() for tower in placed["fetches"]})
    _copy(model_dir, out / PUBLISHED, (*shared, *(towers[tower] for tower in fetched)))
    return {function: {"layers": layers_of(out, function), **plan[function]} for function in FUNCTIONS}


def _copy(source: Path, target: Path, names: Iterable[str]) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in names:
        shutil.copy2(source / name, target / name)


def layers_of(out: Path, function: str) -> list[str]:
    """The function's layers this build made."""
    return [layer for layer in FUNCTIONS[function] if (out / layer).is_dir()]


def function_mb(out: Path, function: str) -> float:
    """The function unzipped: its code and the layers it has now."""
    code = size_mb(ROOT / "functions" / function)
    return code + sum(size_mb(out / layer) for layer in layers_of(out, function))


def record(
    out: Path,
    *,
    architecture: str | None = None,
    model_dir: Path | None = None,
    bytecode: str | None = None,
    functions: dict[str, dict[str, list[str]]] | None = None,
) -> dict:
    """Update build.json with what was just built (the deps' platform, their byte code: `unchecked-hash`
    or `none`, the model's id, each function's layers and towers: `build_model`)."""
    path = out / RECORD
    built = json.loads(path.read_text()) if path.is_file() else {}
    if architecture is not None:
        built |= {"architecture": architecture, "python": PYTHON_VERSION}
    if bytecode is not None:
        built["bytecode"] = bytecode
    if model_dir is not None:
        built["model_id"] = json.loads((model_dir / "manifest.json").read_text())["model_id"]
    if functions is not None:
        built |= {"functions": functions, "published": PUBLISHED}
    path.write_text(json.dumps(built, indent=2) + "\n")
    return built


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def placement(out: Path = OUT) -> dict[str, dict[str, list[str]]]:
    """Each function's layers and towers as build.json records them; for layers built before it did,
    what every build made then (the layers of FUNCTIONS there are, the search function's image tower
    fetched, every other tower held)."""
    path = out / RECORD
    recorded = json.loads(path.read_text()).get("functions") if path.is_file() else None
    if recorded:
        return recorded
    return {
        function: {
            "layers": layers_of(out, function),
            "holds": [t for t in TOWERS.get(function, ()) if (function, t) not in ALWAYS_FETCHED],
            "fetches": [t for t in TOWERS.get(function, ()) if (function, t) in ALWAYS_FETCHED],
        }
        for function in FUNCTIONS
    }


def published_folder(out: Path = OUT) -> Path:
    """The folder the stack publishes for the functions to fetch from (before build.json recorded one:
    the image layer's model folder, which held the image tower and the manifest)."""
    path = out / RECORD
    recorded = json.loads(path.read_text()).get("published") if path.is_file() else None
    return out / recorded if recorded else out / "model-image" / "model"


def report(out: Path = OUT) -> int:
    plan = placement(out)
    sizes = {
        layer: size_mb(out / layer) for layer in {n for placed in plan.values() for n in placed["layers"]}
    }
    for layer, mb in sorted(sizes.items()):
        print(f"layer {layer:<13} {mb:7.1f} MB unzipped")
    failed = False
    for function, placed in plan.items():
        total = sum(sizes[layer] for layer in placed["layers"]) + size_mb(ROOT / "functions" / function)
        verdict = "ok" if total <= LIMIT_MB else f"OVER Lambda's {LIMIT_MB} MB limit"
        failed |= total > LIMIT_MB
        fetched = fetched_mb(out, placed["fetches"])
        if fetched is not None:
            towers = " and ".join(placed["fetches"]) + (" towers" if len(placed["fetches"]) > 1 else " tower")
            verdict += f"; fetches the {towers} from S3 ({fetched:.1f} MB into /tmp"
            verdict += ")" if fetched <= TMP_MB else f": OVER Lambda's default {TMP_MB} MB)"
            failed |= fetched > TMP_MB
        print(f"function {function:<10} {total:7.1f} MB unzipped with its layers: {verdict}")
    return 1 if failed else 0


def fetched_mb(out: Path, towers: list[str]) -> float | None:
    """What fetching `towers` puts in /tmp; None if none, or if no model is built yet."""
    folder = published_folder(out)
    if not towers or not (folder / "manifest.json").is_file():
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    return sum((folder / manifest["towers"][tower]["int8"]).stat().st_size for tower in towers) / 1e6


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
    built = record(args.out, model_dir=args.model)
    shutil.rmtree(args.out / OPENCLIP, ignore_errors=True)
    if needs_openclip(args.model):
        bytecode = built.get("bytecode") == "unchecked-hash"
        arch = built.get("architecture", args.arch)  # the deps' (--skip-deps keeps them)
        build_openclip(arch, args.out, lambda_python(args.python) if bytecode else None)
    record(args.out, functions=build_model(args.model, args.out))
    return report(args.out)


if __name__ == "__main__":
    sys.exit(main())
