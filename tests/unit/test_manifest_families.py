"""The manifest carries each family's preprocessing, tokenization and score; one embedder reads them.
Format 1 manifests (CLIP, written before families) load with CLIP's behaviour unchanged."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.fixtures import images
from visual_search.embedding import Embedder, Manifest
from visual_search.embedding.manifest import ScoreSpec, TextSpec, image_spec_from
from visual_search.embedding.preprocess import crop_offset, preprocess
from visual_search.embedding.score import cosine_at, match_probability
from visual_search.embedding.tokenizer import TextTokenizer
from visual_search.errors import ModelError

SIGLIP_IMAGE = {
    "resize": "square",
    "interpolation": "bilinear",
    "crop_offsets": "floor",
    "resize_to": 224,
    "crop_size": 224,
    "rescale_factor": 1 / 255,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
}


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _rewrite(folder, **changes) -> None:
    path = folder / "manifest.json"
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


FORMAT_1_IMAGE = ("resize_to", "crop_size", "rescale_factor", "mean", "std")
FORMAT_1_TEXT = ("context_length", "bos_token_id", "eos_token_id", "pad_token_id")


def test_a_format_1_manifest_loads_as_clip_with_clips_preprocessing_tokenization_and_score(model_copy):
    # Exactly the keys a format 1 manifest has (the shipped tiny model was written so), nothing newer.
    raw = json.loads((model_copy / "manifest.json").read_text())
    for key in ("family", "score", "pooling"):
        raw.pop(key, None)
    raw["image"] = {k: raw["image"][k] for k in FORMAT_1_IMAGE}
    raw["text"] = {k: raw["text"][k] for k in FORMAT_1_TEXT}
    (model_copy / "manifest.json").write_text(json.dumps(raw | {"format_version": 1}))

    manifest = Manifest.load(model_copy)

    assert manifest.family == "clip"
    assert (manifest.image.resize, manifest.image.interpolation, manifest.image.crop_offsets) == (
        "shortest_edge",
        "bicubic",
        "floor",
    )
    assert (manifest.text.padding, manifest.text.padding_side) == ("longest", "right")
    assert manifest.score == ScoreSpec("cosine")


def test_a_siglip_manifest_gives_square_pixels_fixed_length_ids_and_a_sigmoid_score(model_copy):
    raw = json.loads((model_copy / "manifest.json").read_text())
    text = {**raw["text"], "padding": "max_length", "padding_side": "left", "kind": "gemma-bpe"}
    score = {"kind": "sigmoid", "logit_scale": 117.3, "logit_bias": -12.9}
    _rewrite(model_copy, format_version=2, family="siglip", image=SIGLIP_IMAGE, text=text, score=score)

    embedder = Embedder.from_dir(model_copy)
    ids = embedder.token_ids(["a cat", "a photo of a red shirt"])

    assert embedder.manifest.family == "siglip"
    assert ids.shape == (2, 77)
    assert ids[0, 0] == ids[0, 60] == raw["text"]["pad_token_id"]  # left padding: ids at the end
    assert ids[0, -1] == raw["text"]["eos_token_id"]
    assert embedder.manifest.score == ScoreSpec("sigmoid", 117.3, -12.9)
    assert embedder.embed_images([images.png(500, 200, seed=1)]).shape == (1, embedder.dim)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("image", "resize", "crop-and-pray"),
        ("text", "padding", "middle"),
        ("text", "clean", "nfkc"),
        ("score", "kind", "softmax"),
    ],
)
def test_an_unknown_setting_is_refused_naming_the_field(model_copy, section, key, value):
    raw = json.loads((model_copy / "manifest.json").read_text())
    block = raw.get(section, {"kind": "cosine"}) | {key: value}
    _rewrite(model_copy, format_version=2, **{section: block})

    with pytest.raises(ModelError, match=f"{section}.{key}"):
        Manifest.load(model_copy)


def test_square_resizing_squashes_the_whole_picture_without_a_crop():
    spec = image_spec_from(SIGLIP_IMAGE)
    picture = images.photo_like(640, 200, seed=5)

    got = preprocess(picture, spec)

    want = np.asarray(picture.resize((224, 224), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    np.testing.assert_allclose(got, ((want - 0.5) / 0.5).transpose(2, 0, 1), atol=1e-6)


@pytest.mark.parametrize(("length", "floor", "nearest"), [(225, 0, 0), (226, 1, 1), (227, 1, 2), (229, 2, 2)])
def test_centre_crop_offsets_round_down_like_transformers_or_to_even_like_torchvision(length, floor, nearest):
    assert crop_offset(length, 224, "floor") == floor
    assert crop_offset(length, 224, "round") == nearest


def test_fixed_length_padding_fills_every_row_to_the_context_length(tiny_model_dir):
    manifest = Manifest.load(tiny_model_dir)
    spec = TextSpec(**{**manifest.text.__dict__, "padding": "max_length"})
    tokenizer = TextTokenizer(manifest.read_verified(manifest.tokenizer_file).decode(), spec)

    ids = tokenizer.encode_batch(["a cat", "word " * 200])

    assert ids.shape == (2, 77)
    assert list(ids[0, 4:]) == [spec.pad_token_id] * 73
    assert ids[1, -1] == spec.eos_token_id  # truncated, the end token kept


@given(st.floats(-1, 1), st.floats(1, 200), st.floats(-20, 5))
def test_a_match_probability_maps_back_to_its_cosine(cosine, scale, bias):
    spec = ScoreSpec("sigmoid", scale, bias)
    probability = match_probability(spec, cosine)
    assert probability is not None
    if 1e-9 < probability < 1 - 1e-9:  # away from where float64 cannot tell p from 0 or 1
        assert math.isclose(cosine_at(spec, probability), cosine, abs_tol=1e-6)


def test_a_cosine_family_has_no_match_probability():
    assert match_probability(ScoreSpec("cosine"), 0.3) is None
    assert cosine_at(ScoreSpec("cosine"), 0.5) is None
