"""The runtime Embedder (ONNX) against transformers' CLIPModel in torch, end to end on real photos
and texts: fp32 cosine >= 0.99999 per row, int8 mean cosine >= 0.999, nearest-neighbour order kept."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPTokenizer
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from tests.fixtures.photos import PHOTOS, photo_png
from visual_search.embedding import Embedder
from visual_search.model_build.parity import compare

TEXTS = [
    "a photo of an astronaut",
    "a cup of coffee",
    "a cat",
    "a rocket on a launch pad",
    "cells under a microscope",
    "a man with a camera",
    "the moon",
    "a printed page",
    "",
    "a very long description " * 20,
]


def _photo_bytes() -> list[bytes]:
    return [photo_png(name) for name in PHOTOS]


@pytest.fixture(scope="module")
def reference_vectors(reference_model, reference_checkpoint):
    processor = CLIPImageProcessorPil.from_pretrained(reference_checkpoint)
    tokenizer = CLIPTokenizer.from_pretrained(reference_checkpoint)
    pil = [Image.open(io.BytesIO(b)).convert("RGB") for b in _photo_bytes()]
    pixels = torch.from_numpy(processor(images=pil, return_tensors="np")["pixel_values"])
    ids = torch.from_numpy(
        tokenizer(TEXTS, padding=True, truncation=True, max_length=77, return_tensors="np")["input_ids"]
    )
    with torch.no_grad():
        image = reference_model.get_image_features(pixel_values=pixels).pooler_output.numpy()
        text = reference_model.get_text_features(input_ids=ids).pooler_output.numpy()
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return {"image": unit(image), "text": unit(text)}


@pytest.fixture(scope="module", params=["fp32", "int8"])
def runtime_vectors(request, built_model):
    embedder = Embedder.from_dir(built_model, precision=request.param)
    return request.param, {
        "image": embedder.embed_images(_photo_bytes()),
        "text": embedder.embed_texts(TEXTS),
    }


@pytest.mark.parametrize("tower", ["image", "text"])
def test_runtime_embeddings_match_the_reference(tower, reference_vectors, runtime_vectors):
    precision, vectors = runtime_vectors
    parity = compare(reference_vectors[tower], vectors[tower])
    if precision == "fp32":
        assert parity.min_cosine >= 0.99999
    else:
        assert parity.mean_cosine >= 0.999
    assert parity.nn_decided >= len(vectors[tower]) // 2
    assert parity.nn_kept == 1.0


def test_build_recorded_its_parity_in_the_manifest(built_model):
    from visual_search.embedding import Manifest

    recorded = Manifest.load(built_model).raw["parity"]
    assert recorded["fp32"]["image"]["min_cosine"] >= 0.99999
    assert recorded["int8"]["text"]["mean_cosine"] >= 0.999
