"""SigLIP 2 through the build tool and the runtime, against transformers (SiglipModel, Siglip2Tokenizer,
SiglipImageProcessorPil) on a tiny checkpoint in the fixed-resolution SigLIP 2 layout: the tiny-siglip2
architecture with seeded weights, a Gemma-layout tokenizer trained at test time (the real vocabulary
cannot be downloaded) and a preprocessor_config.json asking for bilinear resizing. Ids equal, pixels
equal, fp32 rows at cosine >= 0.99999 and int8 at mean >= 0.999 per tower, the score as the model's
own sigmoid; the hub download path against the fake hub; the refusals."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SiglipModel
from transformers.image_utils import PILImageResampling
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
from transformers.models.siglip2.processing_siglip2 import Siglip2Processor
from transformers.models.siglip2.tokenization_siglip2 import Siglip2Tokenizer

import visual_search
from tests.doubles.fake_hub import COMMIT, FakeHub
from tests.fixtures.gemma_tokenizer import trained_gemma_tokenizer
from tests.fixtures.photos import PHOTOS, photo_array, photo_png
from tests.fixtures.texts import CASES
from visual_search.cli import main as cli_main
from visual_search.embedding import Embedder, Manifest
from visual_search.embedding.decode import decode_image
from visual_search.embedding.preprocess import preprocess
from visual_search.embedding.score import match_probability
from visual_search.model_build.parity import compare
from visual_search.model_build.source import load_preset

MAX_ABS_DIFF = 0.02  # normalised units, as for CLIP
TEXTS = [
    "a photo of an astronaut",
    "a cup of coffee",
    "A CAT",
    "un cohete en la plataforma de lanzamiento",
    "顕微鏡で見た細胞",
    "رجل مع كاميرا",
    "the moon 🌕",
    "a printed page",
    "",
    "a very long description " * 20,
]
REPO = "test-org/tiny-siglip2"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("siglip") / "tiny-siglip2"
    load_preset("tiny-siglip2", seed=7).model.save_pretrained(folder)
    trained_gemma_tokenizer().save_pretrained(folder)
    SiglipImageProcessorPil(resample=PILImageResampling.BILINEAR).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def built(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "siglip"
    assert cli_main(["build-model", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def reference_tokenizer(checkpoint) -> Siglip2Tokenizer:
    return Siglip2Tokenizer.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def reference_processor(checkpoint) -> SiglipImageProcessorPil:
    return SiglipImageProcessorPil.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def reference_model(checkpoint) -> SiglipModel:
    return SiglipModel.from_pretrained(checkpoint, attn_implementation="eager").eval()


def _reference_ids(tokenizer: Siglip2Tokenizer, texts: list[str]) -> np.ndarray:
    return tokenizer(texts, return_tensors="np", **Siglip2Processor.text_kwargs)["input_ids"]


def test_the_manifest_says_siglip_square_bilinear_fixed_length_lowercase_and_sigmoid(built, reference_model):
    manifest = Manifest.load(built)
    manifest.verify_all()

    assert manifest.family == "siglip"
    assert (manifest.image.resize, manifest.image.interpolation, manifest.image.size) == (
        "square",
        "bilinear",
        224,
    )
    assert manifest.image.mean == manifest.image.std == (0.5, 0.5, 0.5)
    assert (manifest.text.padding, manifest.text.context_length, manifest.text.lowercase) == (
        "max_length",
        64,
        True,
    )
    assert manifest.score.kind == "sigmoid"
    assert manifest.score.logit_scale == pytest.approx(float(reference_model.logit_scale.detach().exp()))
    assert manifest.score.logit_bias == pytest.approx(float(reference_model.logit_bias.detach()))


def test_token_ids_equal_siglip2_tokenizer_on_the_multilingual_set(built, reference_tokenizer):
    embedder = Embedder.from_dir(built)
    mismatches = []
    for text in CASES:
        want = _reference_ids(reference_tokenizer, [text])[0].tolist()
        got = embedder.token_ids([text])[0].tolist()
        if got != want:
            mismatches.append((text, want[-8:], got[-8:]))

    assert len(CASES) >= 200
    assert sum(len(reference_tokenizer(c)["input_ids"]) > 64 for c in CASES) >= 10  # truncated ones
    assert mismatches == []


def test_a_batch_is_padded_to_64_on_the_references_side_like_the_reference(built, reference_tokenizer):
    got = Embedder.from_dir(built).token_ids(CASES[:40])

    assert got.shape == (40, 64)
    assert got.tolist() == _reference_ids(reference_tokenizer, CASES[:40]).tolist()


@pytest.mark.parametrize("name", PHOTOS)
def test_pixels_equal_the_siglip_image_processor_on_real_photos(built, reference_processor, name):
    data = photo_png(name)
    spec = Manifest.load(built).image
    want = reference_processor(images=Image.open(io.BytesIO(data)), return_tensors="np")["pixel_values"][0]

    got = preprocess(decode_image(data, min_side=spec.resize_to).image, spec)

    assert got.shape == want.shape == (3, 224, 224)
    assert float(np.max(np.abs(got - want))) <= MAX_ABS_DIFF


@pytest.mark.parametrize(("width", "height"), [(225, 224), (224, 500), (1000, 333), (90, 60)])
def test_odd_shapes_are_squashed_to_the_square_like_the_processor(built, reference_processor, width, height):
    picture = Image.fromarray(photo_array("astronaut")).resize((width, height))
    want = reference_processor(images=picture, return_tensors="np")["pixel_values"][0]

    got = preprocess(picture, Manifest.load(built).image)

    assert float(np.max(np.abs(got - want))) <= MAX_ABS_DIFF


@pytest.fixture(scope="module")
def reference_vectors(reference_model, reference_processor, reference_tokenizer) -> dict[str, np.ndarray]:
    pil = [Image.open(io.BytesIO(photo_png(n))).convert("RGB") for n in PHOTOS]
    pixels = torch.from_numpy(reference_processor(images=pil, return_tensors="np")["pixel_values"])
    ids = torch.from_numpy(_reference_ids(reference_tokenizer, TEXTS))
    with torch.no_grad():
        image = reference_model.get_image_features(pixel_values=pixels).pooler_output.numpy()
        text = reference_model.get_text_features(input_ids=ids).pooler_output.numpy()
    return {"image": _unit(image), "text": _unit(text)}


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("tower", ["image", "text"])
def test_runtime_embeddings_match_siglip_model(built, reference_vectors, precision, tower):
    embedder = Embedder.from_dir(built, precision=precision)
    got = (
        embedder.embed_images([photo_png(n) for n in PHOTOS])
        if tower == "image"
        else embedder.embed_texts(TEXTS)
    )

    parity = compare(reference_vectors[tower], got)

    if precision == "fp32":
        assert parity.min_cosine >= 0.99999
    else:
        assert parity.mean_cosine >= 0.999
    assert parity.nn_kept == 1.0


def test_the_match_probability_is_siglip_models_own_sigmoid(
    built, reference_model, reference_processor, reference_tokenizer
):
    photos = [photo_png(n) for n in PHOTOS[:4]]
    embedder = Embedder.from_dir(built, precision="fp32")
    cosines = embedder.embed_texts(TEXTS[:3]) @ embedder.embed_images(photos).T
    pil = [Image.open(io.BytesIO(p)).convert("RGB") for p in photos]
    with torch.no_grad():
        logits = reference_model(
            input_ids=torch.from_numpy(_reference_ids(reference_tokenizer, TEXTS[:3])),
            pixel_values=torch.from_numpy(
                reference_processor(images=pil, return_tensors="np")["pixel_values"]
            ),
        ).logits_per_text

    got = np.vectorize(lambda c: match_probability(embedder.manifest.score, float(c)))(cosines)

    np.testing.assert_allclose(got, torch.sigmoid(logits).numpy(), atol=1e-5)


def test_a_siglip_1_checkpoint_is_refused_in_one_line(checkpoint, tmp_path, capsys):
    ckpt = tmp_path / "siglip1"
    shutil.copytree(checkpoint, ckpt)
    (ckpt / "spiece.model").write_bytes(b"sentencepiece")

    assert cli_main(["build-model", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("error: ")
    assert "SigLIP (1)" in line
    assert not (tmp_path / "o").exists()


def test_a_naflex_siglip2_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    ckpt = tmp_path / "naflex"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "siglip2"}))

    assert cli_main(["build-model", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]) == 2
    assert "NaFlex" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("preset", ["tiny-siglip2"])
def test_the_preset_builds_and_embeds(preset, tmp_path):
    out = tmp_path / preset
    assert cli_main(["build-model", "--preset", preset, "--out", str(out), "--precisions", "int8"]) == 0

    embedder = Embedder.from_dir(out)

    assert embedder.embed_texts(["Ünïcödé 文字 ✨"]).shape == (1, embedder.dim)
    assert embedder.token_ids(["x"]).shape == (1, 64)


def test_a_siglip_checkpoint_downloads_from_the_hub_verified_and_builds(checkpoint, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VS_", "HF_"))}
    with FakeHub(REPO, checkpoint) as hub:
        env |= {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1"}
        env["PYTHONPATH"] = str(Path(visual_search.__file__).resolve().parents[1])  # this checkout's code
        out = tmp_path / "from-hub"
        done = subprocess.run(
            [sys.executable, "-m", "visual_search.cli", "build-model", "--hub", REPO, "--out", str(out)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        weights = hub.downloads("model.safetensors")

    assert done.returncode == 0, done.stderr
    manifest = Manifest.load(out)
    assert manifest.family == "siglip"
    assert (manifest.raw["source"]["kind"], manifest.raw["source"]["revision"]) == ("hub", COMMIT)
    assert manifest.model_id.startswith(f"{REPO}@")
    assert weights == [None]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)
