"""Decoding + preprocessing against transformers' CLIPImageProcessor (PIL backend) on real photos
from scikit-image. Bar: max abs difference <= 0.02 in normalised units."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from tests.fixtures.photos import PHOTOS, photo_array, photo_png
from visual_search.embedding.decode import decode_image
from visual_search.embedding.manifest import ImageSpec
from visual_search.embedding.preprocess import preprocess
from visual_search.model_build.source import default_image_spec

MAX_ABS_DIFF = 0.02


@pytest.fixture(scope="module")
def spec() -> ImageSpec:
    raw = default_image_spec(224)
    return ImageSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


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


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_reduced_scale_jpeg_decoding_stays_within_the_parity_bar(name, spec, reference):
    """A 12 MP JPEG decoded with `draft` vs the reference on the fully decoded image."""
    big = Image.fromarray(photo_array(name)).resize((4000, 3000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=92)
    data = buf.getvalue()
    want = reference(images=Image.open(io.BytesIO(data)).convert("RGB"), return_tensors="np")["pixel_values"][
        0
    ]
    got = preprocess(decode_image(data, min_side=224).image, spec)
    assert float(np.max(np.abs(got - want))) <= MAX_ABS_DIFF
