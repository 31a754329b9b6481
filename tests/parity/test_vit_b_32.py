"""int8 parity on the full ViT-B/32 architecture (random weights, same compute as the real model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.fixtures.photos import PHOTOS, photo_png
from visual_search.embedding import Embedder
from visual_search.embedding.decode import decode_image
from visual_search.embedding.preprocess import preprocess_batch
from visual_search.model_build.build import BuildRequest, build_model
from visual_search.model_build.parity import compare
from visual_search.model_build.source import load_preset

pytestmark = pytest.mark.slow

SOME_PHOTOS = PHOTOS[:10]
TEXTS = [
    "a photo of an astronaut",
    "a cup of coffee",
    "a cat",
    "a rocket",
    "cells",
    "a man with a camera",
    "galaxies",
    "an eye",
    "old coins",
    "a colour wheel",
]


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    out = tmp_path_factory.mktemp("vit") / "vit-b-32"
    build_model(BuildRequest(out=out, preset="vit-b-32", seed=0, precisions=("int8",)), log=lambda _: None)
    return out


def test_int8_vit_b_32_matches_torch_and_keeps_nearest_neighbours(vit):
    photos = [photo_png(name) for name in SOME_PHOTOS]
    embedder = Embedder.from_dir(vit)
    reference = load_preset("vit-b-32", seed=0).model
    pixels = preprocess_batch([decode_image(p).image for p in photos], embedder.manifest.image)
    ids = embedder.token_ids(TEXTS)
    with torch.no_grad():
        ref_img = reference.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output.numpy()
        ref_txt = reference.get_text_features(input_ids=torch.from_numpy(ids)).pooler_output.numpy()
    for ref, got in ((ref_img, embedder.embed_pixels(pixels)), (ref_txt, embedder.embed_texts(TEXTS))):
        ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
        result = compare(ref, got)
        assert result.mean_cosine >= 0.999
        assert result.nn_kept == 1.0
