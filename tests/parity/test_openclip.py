"""OpenCLIP through the build tool and the runtime, against open_clip itself: tiny checkpoints in
open_clip's hub layout (open_clip_config.json + open_clip_model.safetensors), one with open_clip's CLIP
text tower (causal) and one with MobileCLIP's (CustomTextCLIP, no causal mask). Ids equal to open_clip's
SimpleTokenizer on the multilingual set, pixels equal to open_clip's own transform, fp32 rows at cosine
>= 0.99999 and int8 at mean >= 0.999 per tower; the fake hub's download path; the refusals."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import visual_search
from tests.doubles.fake_hub import COMMIT, FakeHub
from tests.fixtures.photos import PHOTOS, photo_array, photo_png
from tests.fixtures.texts import CASES
from visual_search.cli import main as cli_main
from visual_search.embedding import Embedder, Manifest
from visual_search.embedding.decode import decode_image
from visual_search.embedding.preprocess import preprocess
from visual_search.model_build.openclip_family import reference_transform, save_checkpoint
from visual_search.model_build.parity import compare
from visual_search.model_build.presets import OPENCLIP_PRESETS
from visual_search.model_build.source import load_preset

MAX_ABS_DIFF = 0.02  # normalised units, as for CLIP
TEXTS = [
    "a photo of an astronaut",
    "a cup of coffee",
    "A CAT",
    "“curly quotes” &amp; entities",
    "ﬁsh in ＦＵＬＬＷＩＤＴＨ",
    "ΣΊΣΥΦΟΣ",
    "the moon 🌕",
    "",
    "a very long description " * 20,
]
PRESETS = ["tiny-openclip", "tiny-openclip-bidirectional"]


@pytest.fixture(scope="module", params=PRESETS)
def checkpoint(request, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("openclip") / request.param
    save_checkpoint(load_preset(request.param, seed=7).model, OPENCLIP_PRESETS[request.param], folder)
    return folder


@pytest.fixture(scope="module")
def built(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / checkpoint.name
    assert cli_main(["build-model", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def reference(checkpoint):
    model = open_clip.create_model(f"local-dir:{checkpoint}").eval()
    return model, open_clip.get_tokenizer(f"local-dir:{checkpoint}"), reference_transform(model)


def test_the_manifest_says_openclip_fixed_length_ftfy_cleaning_and_cosine(built):
    manifest = Manifest.load(built)
    manifest.verify_all()

    assert manifest.family == "openclip"
    assert (manifest.text.clean, manifest.text.padding, manifest.text.pad_token_id) == (
        "openclip",
        "max_length",
        0,
    )
    assert (manifest.image.resize, manifest.image.crop_offsets) == ("shortest_edge", "round")
    assert manifest.score.kind == "cosine"


def test_token_ids_equal_open_clips_tokenizer_on_the_multilingual_set(built, reference):
    _, tokenizer, _ = reference
    embedder = Embedder.from_dir(built)

    want = tokenizer(CASES).numpy()
    got = embedder.token_ids(CASES)

    assert sum(int((row != 0).sum()) == 77 for row in want) >= 10  # truncated ones
    assert [i for i in range(len(CASES)) if got[i].tolist() != want[i].tolist()] == []


@pytest.mark.parametrize("name", PHOTOS)
def test_pixels_equal_open_clips_transform_on_real_photos(built, reference, name):
    _, _, transform = reference
    data = photo_png(name)
    spec = Manifest.load(built).image
    want = transform(Image.open(io.BytesIO(data)).convert("RGB")).numpy()

    got = preprocess(decode_image(data, min_side=spec.resize_to).image, spec)

    assert got.shape == want.shape == (3, 224, 224)
    assert float(np.max(np.abs(got - want))) <= MAX_ABS_DIFF


@pytest.mark.parametrize(("width", "height"), [(225, 224), (227, 500), (1000, 333), (301, 999)])
def test_odd_shapes_crop_where_torchvision_crops(built, reference, width, height):
    _, _, transform = reference
    picture = Image.fromarray(photo_array("astronaut")).resize((width, height))

    got = preprocess(picture, Manifest.load(built).image)

    assert float(np.max(np.abs(got - transform(picture).numpy()))) <= MAX_ABS_DIFF


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_runtime_embeddings_match_open_clip(built, reference, precision):
    model, tokenizer, transform = reference
    pil = [Image.open(io.BytesIO(photo_png(n))).convert("RGB") for n in PHOTOS]
    with torch.no_grad():
        ref_image = model.encode_image(torch.stack([transform(p) for p in pil]), normalize=True).numpy()
        ref_text = model.encode_text(tokenizer(TEXTS), normalize=True).numpy()
    embedder = Embedder.from_dir(built, precision=precision)
    got = {
        "image": embedder.embed_images([photo_png(n) for n in PHOTOS]),
        "text": embedder.embed_texts(TEXTS),
    }

    for tower, ref in (("image", ref_image), ("text", ref_text)):
        parity = compare(ref, got[tower])
        if precision == "fp32":
            assert parity.min_cosine >= 0.99999, tower
        else:
            assert parity.mean_cosine >= 0.999, tower
        assert parity.nn_kept == 1.0, tower


def test_a_checkpoint_with_a_hub_tokenizer_is_refused_in_one_line(checkpoint, tmp_path, capsys):
    ckpt = tmp_path / "hf-tokenizer"
    shutil.copytree(checkpoint, ckpt)
    config = json.loads((ckpt / "open_clip_config.json").read_text())
    config["model_cfg"]["text_cfg"]["hf_tokenizer_name"] = "timm/ViT-B-16-SigLIP2"
    (ckpt / "open_clip_config.json").write_text(json.dumps(config))

    assert cli_main(["build-model", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: ")
    assert "timm/ViT-B-16-SigLIP2" in line
    assert not (tmp_path / "o").exists()


def test_an_openclip_checkpoint_downloads_from_the_hub_verified_and_builds(checkpoint, tmp_path):
    repo = f"test-org/{checkpoint.name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VS_", "HF_"))}
    with FakeHub(repo, checkpoint) as hub:
        env |= {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1"}
        env["PYTHONPATH"] = str(Path(visual_search.__file__).resolve().parents[1])  # this checkout's code
        out = tmp_path / "from-hub"
        done = subprocess.run(
            [sys.executable, "-m", "visual_search.cli", "build-model", "--hub", repo, "--out", str(out)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        weights = hub.downloads("open_clip_model.safetensors")

    assert done.returncode == 0, done.stderr
    manifest = Manifest.load(out)
    assert (manifest.family, manifest.raw["source"]["revision"]) == ("openclip", COMMIT)
    assert weights == [None]
