"""The rendition is made fast (an integer box reduction before Lanczos) but must look like a fair
Lanczos resampling: within a quarter of a dB of what the JPEG encoding alone loses."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.fixtures.photos import photo_array
from visual_search.ingest import renditions
from visual_search.ingest.renditions import MAX_SIDE, make_rendition


def _mosaic() -> Image.Image:
    """A 1 MP image of real photos' fine detail (scikit-image's, at their native resolution)."""
    canvas = Image.new("RGB", (1152, 864))
    for i, name in enumerate(("astronaut", "coffee", "rocket", "chelsea")):
        tile = Image.fromarray(photo_array(name)).convert("RGB").crop((0, 0, 576, 432))
        canvas.paste(tile, ((i % 2) * 576, (i // 2) * 432))
    return canvas


def _psnr(image: Image.Image, reference: Image.Image) -> float:
    error = np.asarray(image, np.float32) - np.asarray(reference, np.float32)
    return 10 * np.log10(255.0**2 / float(np.mean(error**2)))


def test_a_rendition_loses_little_more_than_its_jpeg_encoding_to_a_fair_lanczos_thumbnail(monkeypatch):
    # Given a 1 MP photo and its fair thumbnail (Lanczos over every source pixel)
    photo = _mosaic()
    fair = photo.copy()
    fair.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=None)
    # When the rendition is made the fast way, and the fair way with the same encoding
    fast = Image.open(io.BytesIO(make_rendition(photo)))
    monkeypatch.setattr(renditions, "REDUCING_GAP", None)
    encoded_fair = Image.open(io.BytesIO(make_rendition(photo)))
    # Then both have the thumbnail's size, and the fast one is within 0.25 dB of the encoding's own loss
    assert fast.size == encoded_fair.size == fair.size
    assert _psnr(fast, fair) >= _psnr(encoded_fair, fair) - 0.25
