"""int8 parity on the full SigLIP 2 ViT-B/16 architecture (random weights, same compute and 256k-token
embedding table as google/siglip2-base-patch16-224): the runtime against SiglipModel in torch."""

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

TEXTS = ["a photo of an astronaut", "une tasse de café", "一只猫", "a rocket", "клетки", "رجل مع كاميرا"]


@pytest.fixture(scope="module")
def siglip2(tmp_path_factory):
    out = tmp_path_factory.mktemp("siglip2") / "vit-b-16-siglip2"
    request = BuildRequest(out=out, preset="vit-b-16-siglip2", seed=0, precisions=("int8",))
    build_model(request, log=lambda _: None)
    return out


def test_int8_vit_b_16_siglip2_matches_torch_and_keeps_nearest_neighbours(siglip2):
    embedder = Embedder.from_dir(siglip2)
    reference = load_preset("vit-b-16-siglip2", seed=0).model
    pixels = preprocess_batch(
        [decode_image(photo_png(n)).image for n in PHOTOS[:10]], embedder.manifest.image
    )
    ids = embedder.token_ids(TEXTS)
    with torch.no_grad():
        ref_img = reference.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output.numpy()
        ref_txt = reference.get_text_features(input_ids=torch.from_numpy(ids)).pooler_output.numpy()
    for ref, got in ((ref_img, embedder.embed_pixels(pixels)), (ref_txt, embedder.embed_texts(TEXTS))):
        result = compare(ref / np.linalg.norm(ref, axis=1, keepdims=True), got)
        assert result.mean_cosine >= 0.999
        assert result.nn_kept == 1.0
