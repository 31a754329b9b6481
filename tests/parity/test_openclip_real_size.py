"""int8 parity on OpenCLIP's real architectures (random weights, same compute as LAION's ViT-B-32 and
Apple's MobileCLIP-S2): the runtime against open_clip in torch, on real photos and texts."""

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

TEXTS = ["a photo of an astronaut", "a cup of coffee", "a cat", "a rocket", "cells", "a man with a camera"]


@pytest.mark.parametrize("preset", ["vit-b-32-laion", "mobileclip-s2"])
def test_int8_towers_match_open_clip_and_keep_nearest_neighbours(preset, tmp_path):
    out = tmp_path / preset
    build_model(BuildRequest(out=out, preset=preset, seed=0, precisions=("int8",)), log=lambda _: None)
    embedder = Embedder.from_dir(out)
    reference = load_preset(preset, seed=0).model
    pixels = preprocess_batch(
        [decode_image(photo_png(n)).image for n in PHOTOS[:10]], embedder.manifest.image
    )
    ids = embedder.token_ids(TEXTS)
    with torch.no_grad():
        ref_img = reference.encode_image(torch.from_numpy(pixels), normalize=True).numpy()
        ref_txt = reference.encode_text(torch.from_numpy(ids), normalize=True).numpy()
    for ref, got in ((ref_img, embedder.embed_pixels(pixels)), (ref_txt, embedder.embed_texts(TEXTS))):
        result = compare(ref.astype(np.float32), got)
        assert result.mean_cosine >= 0.999
        assert result.nn_kept == 1.0
