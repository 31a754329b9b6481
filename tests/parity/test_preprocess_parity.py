"""Decoding + preprocessing against transformers' CLIPImageProcessor (PIL backend) on real photos
from scikit-image. Bar: max abs difference <= 0.02 in normalised units; for JPEGs decoded at a reduced
scale, the embedding's cosine to full decoding >= 0.9999."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from tests.fixtures.photos import PHOTOS, photo_array, photo_png
from visual_search.embedding import Embedder
from visual_search.embedding.decode import decode_image
from visual_search.embedding.manifest import ImageSpec, image_spec_from
from visual_search.embedding.preprocess import preprocess
from visual_search.model_build.clip_family import default_image_spec

MAX_ABS_DIFF = 0.02


@pytest.fixture(scope="module")
def spec() -> ImageSpec:
    return image_spec_from(default_image_spec(224))


@pytest.fixture(scope="module")
def reference() -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil()


@pytest.mark.parametrize("name", PHOTOS)
def test_preprocessing_matches_clip_image_processor_on_real_photos(name, spec, reference):
    data = photo_png(name)
    want = reference(images=Image.open(io.BytesIO(data)), return_tensors="np")["pixel_values"][0]
    got = preprocess(decode_image(data, min_side=224).image, spec)
    assert got.shape == want.shape == (3, 224, 224)
    assert float(np.max(np.abs(got - want))) <= MAX_ABS_DIFF


@pytest.mark.parametrize(("width", "height"), [(225, 224), (224, 500), (1000, 333), (301, 999)])
def test_odd_aspect_ratios_crop_like_transformers(width, height, spec, reference):
    array = np.asarray(Image.fromarray(photo_array("astronaut")).resize((width, height)))
    want = reference(images=Image.fromarray(array), return_tensors="np")["pixel_values"][0]
    got = preprocess(Image.fromarray(array), spec)
    assert float(np.max(np.abs(got - want))) <= MAX_ABS_DIFF


MIN_DRAFT_COSINE = 0.9999


def _real_jpegs() -> dict[str, bytes]:
    """JPEGs of real photos large enough to be decoded at a reduced scale: scikit-image's retina scan
    (1411 px, a camera JPEG as shipped) and mosaics of its photos at their native resolution (real fine
    detail, at a size where `draft` halves the image)."""
    retina = Path(skimage.data.__file__).parent / "retina.jpg"
    names = ("astronaut", "coffee", "rocket", "chelsea")
    tiles = [Image.fromarray(photo_array(n)).convert("RGB") for n in names]
    jpegs = {"retina": retina.read_bytes()}
    for shift in range(2):
        canvas = Image.new("RGB", (1200, 1000))
        for i in range(4):
            canvas.paste(tiles[(i + shift) % 4].crop((0, 0, 600, 500)), ((i % 2) * 600, (i // 2) * 500))
        buf = io.BytesIO()
        canvas.save(buf, format="JPEG", quality=85)
        jpegs[f"mosaic_{shift}"] = buf.getvalue()
    return jpegs


@pytest.fixture(scope="module")
def fp32_embedder(built_model) -> Embedder:
    # fp32: int8's per-batch activation rounding would blur what decoding alone changes.
    return Embedder.from_dir(built_model, precision="fp32")


@pytest.mark.parametrize(("name", "data"), sorted(_real_jpegs().items()))
def test_reduced_scale_jpeg_decoding_keeps_the_embedding_of_full_decoding(fp32_embedder, name, data):
    """The draft scale is judged by the embedding, not by pixels: a half-scale decode of the retina
    differs from the full decode by up to 0.14 per pixel, which the resize to the model side averages
    away."""
    spec = fp32_embedder.manifest.image
    reduced = decode_image(data, min_side=spec.resize_to).image
    full = decode_image(data).image
    assert min(reduced.size) < min(full.size)  # the draft did reduce the scale
    vectors = fp32_embedder.embed_pixels(np.stack([preprocess(reduced, spec), preprocess(full, spec)]))
    assert float(vectors[0] @ vectors[1]) >= MIN_DRAFT_COSINE
