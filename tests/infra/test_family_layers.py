"""Every family deploys within Lambda's 250 MB: `make layers` decides, from the built sizes, which int8
towers each function holds in its layers and which it fetches from the bucket (layers/build.py `place`),
and the stack follows that record. The towers are sparse files of each family's measured int8 size
(docs/models.md), the deps layers sparse files of the sizes `make layers` measured here (2026-12-04)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.published_towers import DEFAULT_TMP_MIB, scratch_space
from layers import build
from locks.compile import pins
from tests.conftest import TINY_MODEL
from tests.infra.conftest import Synthesized, ref, synthesize

DEPS_MB = {"arm64": 151.5, "x86_64": 167.7}
BYTECODE_MB = 16.7
OPENCLIP_MB = 6.2  # ftfy and wcwidth with their byte code


@dataclass(frozen=True)
class Family:
    image_mb: float
    text_mb: float
    tokenizer_mb: float | None = None  # None: CLIP's BPE vocabulary (the tiny model's tokenizer.json)
    clean: str = "none"  # the manifest's text.clean: "openclip" needs ftfy
    architecture: str = "arm64"


FAMILIES = {
    "clip-vit-b-32": Family(image_mb=88.9, text_mb=64.5),
    # Gemma's 256k-piece tokenizer.json is tens of MB (the preset's byte-level one is not); 34 MB here.
    "siglip2-vit-b-16": Family(image_mb=101.5, text_mb=283.7, tokenizer_mb=34.0),
    "mobileclip-s2": Family(image_mb=122.7, text_mb=65.3, clean="openclip"),
    "clip-vit-b-32-x86_64": Family(image_mb=88.9, text_mb=64.5, architecture="x86_64"),  # 16 MB more deps
}
# What each function fetches instead of holding; the search function's image tower always.
FETCHES = {
    "clip-vit-b-32": {"search": ["image"], "ingest": [], "authorizer": []},
    "siglip2-vit-b-16": {"search": ["text", "image"], "ingest": ["image"], "authorizer": []},
    "mobileclip-s2": {"search": ["image"], "ingest": ["image"], "authorizer": []},
    "clip-vit-b-32-x86_64": {"search": ["text", "image"], "ingest": ["image"], "authorizer": []},
}
TOWER_FILES = {"image": "image_int8.onnx", "text": "text_int8.onnx"}
FOLDERS = sorted({folder for layers in build.FUNCTIONS.values() for folder in layers})


def _sparse(path: Path, megabytes: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(int(megabytes * 1e6))


def _model(folder: Path, name: str, family: Family) -> Path:
    manifest = json.loads((TINY_MODEL / "manifest.json").read_text())
    manifest["model_id"] = f"{name}@test"
    manifest["text"]["clean"] = family.clean
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if family.tokenizer_mb is None:
        shutil.copy2(TINY_MODEL / "tokenizer.json", folder / "tokenizer.json")
    else:
        _sparse(folder / "tokenizer.json", family.tokenizer_mb)
    _sparse(folder / TOWER_FILES["image"], family.image_mb)
    _sparse(folder / TOWER_FILES["text"], family.text_mb)
    return folder


@dataclass
class Deployed:
    name: str
    layers: Path
    synthesized: Synthesized


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def deployed(request, tmp_path_factory) -> Iterator[Deployed]:
    """`make layers MODEL=<the family's model>` (the deps faked at their measured sizes), then the stack."""
    name, family = request.param, FAMILIES[request.param]
    root = tmp_path_factory.mktemp(name)
    out, model = root / "layers", _model(root / "model", name, family)
    _sparse(out / "deps" / "python" / "blob", DEPS_MB[family.architecture])
    _sparse(out / build.BYTECODE / "python" / "blob", BYTECODE_MB)
    if build.needs_openclip(model):  # as build_openclip installs it from requirements-openclip.lock
        _sparse(out / build.OPENCLIP / "python" / "blob", OPENCLIP_MB)
    build.record(out, architecture=family.architecture, bytecode="unchecked-hash", model_dir=model)
    build.record(out, functions=build.build_model(model, out))
    assert build.report(out) == 0
    # Unstaged: the synth reads the layers where they are instead of copying 400-700 MB of them.
    context = {
        "layers_dir": str(out),
        "architecture": family.architecture,
        "aws:cdk:disable-asset-staging": True,
    }
    yield Deployed(name, out, synthesize(f"family-{name}", context))
    shutil.rmtree(root)  # the copies of the towers are real bytes: up to 1 GB a family


def _layer_folder(logical_id: str) -> str:
    """The folder a LayerVersion was made from (infra/layers.py names its construct after it)."""
    (folder,) = [
        f for f in FOLDERS if re.fullmatch(f"Layers{f.title().replace('-', '')}[0-9A-F]{{8}}", logical_id)
    ]
    return folder


def test_every_function_of_every_family_stays_within_lambdas_250_mb(deployed):
    functions = deployed.synthesized.our_functions()
    assert set(functions) == {"search", "ingest", "authorizer"}
    for name, fn in functions.items():
        folders = [_layer_folder(ref(layer)) for layer in fn["Layers"]]
        total = sum(build.size_mb(deployed.layers / f) for f in folders)
        total += build.size_mb(build.ROOT / "functions" / name)
        assert total <= build.LIMIT_MB, (deployed.name, name, folders, total)


def test_the_towers_no_function_holds_are_published_under_the_models_prefix(deployed):
    (deployment,) = deployed.synthesized.resources("Custom::CDKBucketDeployment").values()
    assert deployment["Properties"]["DestinationBucketKeyPrefix"] == f"_vs/models/{deployed.name}-test/"
    fetched = {t for towers in FETCHES[deployed.name].values() for t in towers}
    published = {p.name for p in deployed.synthesized.stack.node.find_child("Layers").published_dir.iterdir()}
    assert published == {"manifest.json", "tokenizer.json", *(TOWER_FILES[t] for t in fetched)}
    for function, towers in FETCHES[deployed.name].items():
        held = {p.name for p in (deployed.layers / build.MODEL_LAYERS.get(function, "-") / "model").glob("*")}
        assert not held & {TOWER_FILES[t] for t in towers}, (function, held)  # never both


def test_a_function_that_fetches_a_tower_gets_the_prefix_and_may_read_it_and_no_other_gets_it(deployed):
    s = deployed.synthesized
    images = s.stack.get_logical_id(s.stack.images.bucket.node.default_child)
    (deployment_id,) = s.resources("Custom::CDKBucketDeployment")
    prefix = f"_vs/models/{deployed.name}-test/"
    for name, fn in s.our_functions().items():
        remote = fn["Environment"]["Variables"].get("VS_MODEL_REMOTE_URL")
        if not FETCHES[deployed.name][name]:
            assert remote is None, name
            continue
        assert remote == {"Fn::Join": ["", ["s3://", {"Ref": images}, f"/{prefix}"]]}, name
        assert deployment_id in s.json["Resources"][fn["id"]]["DependsOn"], name  # published first
        readable = [
            statement["Resource"]
            for policy in s.resources("AWS::IAM::Policy").values()
            if {"Ref": ref(fn["Role"])} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Allow" and "s3:GetObject*" in statement["Action"]
        ]
        objects = [
            {"Fn::Join": ["", [{"Fn::GetAtt": [images, "Arn"]}, suffix]]} for suffix in ("/*", f"/{prefix}*")
        ]
        assert any(o in (r if isinstance(r, list) else [r]) for r in readable for o in objects), name


def test_only_the_search_function_of_an_openclip_model_gets_ftfy(deployed):
    layers = {
        name: [_layer_folder(ref(layer)) for layer in fn["Layers"]]
        for name, fn in deployed.synthesized.our_functions().items()
    }
    openclip = FAMILIES[deployed.name].clean == "openclip"
    assert (build.OPENCLIP in layers["search"]) == openclip
    assert build.OPENCLIP not in layers["ingest"] + layers["authorizer"]


def test_the_deployment_has_scratch_space_for_the_zip_and_the_towers_it_publishes(deployed):
    published = (
        build.size_mb(deployed.synthesized.stack.node.find_child("Layers").published_dir) * 1e6 / 2**20
    )
    (handler,) = [
        fn["Properties"]
        for logical_id, fn in deployed.synthesized.resources("AWS::Lambda::Function").items()
        if logical_id.startswith("CustomCDKBucketDeployment")
    ]
    size = handler.get("EphemeralStorage", {"Size": DEFAULT_TMP_MIB})["Size"]
    assert size >= 2 * published, (deployed.name, size, published)


# --- the rule itself ------------------------------------------------------------------------------------


def test_a_tower_that_would_put_its_function_over_250_mb_is_fetched_and_one_that_fits_is_held():
    plan = build.place({"search": 170, "ingest": 152, "authorizer": 168}, {"text": 81, "image": 98})
    assert plan["search"] == {"holds": [], "fetches": ["text", "image"]}  # 251 MB with it
    assert plan["ingest"] == {"holds": ["image"], "fetches": []}  # 250 MB with it: within
    assert plan["authorizer"] == {"holds": [], "fetches": []}


def test_the_search_function_fetches_its_image_tower_even_when_it_would_fit():
    plan = build.place({"search": 20, "ingest": 20}, {"text": 1, "image": 1})
    assert plan["search"] == {"holds": ["text"], "fetches": ["image"]}


def test_the_deployment_keeps_lambdas_default_tmp_until_the_zip_and_its_files_need_more():
    assert scratch_space(96) is None  # CLIP's image tower, manifest and tokenizer: the template unchanged
    assert scratch_space(400).to_mebibytes() == 1024  # SigLIP 2's two towers


# --- the openclip extra ---------------------------------------------------------------------------------


def test_an_openclip_manifest_asks_for_the_openclip_layer_and_a_clip_one_does_not(tmp_path):
    assert not build.needs_openclip(TINY_MODEL)
    assert build.needs_openclip(_model(tmp_path / "m", "m", Family(1, 1, clean="openclip")))


def test_the_openclip_layer_installs_ftfy_at_its_locked_version_and_hashes(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(build.subprocess, "run", lambda command, **_: commands.append(command))
    build.build_openclip("arm64", tmp_path, python=None)
    (install,) = commands
    assert install[install.index("--requirement") + 1] == str(build.OPENCLIP_LOCK)
    assert "--require-hashes" in install
    assert install[install.index("--target") + 1] == str(tmp_path / build.OPENCLIP / "python")
    locked = {name.lower(): pinned for name, pinned in pins(build.OPENCLIP_LOCK).items()}
    for requirement in build.openclip_requirements():  # pyproject's openclip extra: ftfy
        name = re.split(r"[<>=\[ ;]", requirement)[0].lower()
        assert name in locked, f"{name} is not in {build.OPENCLIP_LOCK.name}: run `make lock`"
        assert locked[name][1], name  # with its hashes
    assert "ftfy" in locked
