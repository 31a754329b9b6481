"""Bounding the decoder's memory (strip-wise conversion, float32, paste on white, box-resize of the
crop) must not change what ordinary images embed to: each is compared with the straightforward path it
replaced — convert the whole image (float64 for high bit depths, RGBA composited on white as
transformers' CLIPImageProcessor does), resize it whole, crop the centre."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.fixtures import images
from visual_search.embedding import Embedder, decode_image
from visual_search.embedding.decode import DRAFT_OVERSAMPLE
from visual_search.embedding.preprocess import preprocess, resized_size

MIN_COSINE = 0.9999


def reference_rgb(data: bytes, min_side: int) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    if im.format == "JPEG":  # the JPEG draft is unchanged: use the same scale
        short, want = min(im.size), DRAFT_OVERSAMPLE * min_side
        if short >= 2 * want:
            im.draft(None, (int(im.width * want / short), int(im.height * want / short)))
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if im.mode == "F":
            peak = 1.0 if float(np.nanmax(arr)) <= 1.0 else 255.0
        im = Image.fromarray(np.clip(np.nan_to_num(arr) * (255.0 / peak), 0, 255).round().astype(np.uint8))
    if "A" in im.getbands() or im.info.get("transparency") is not None:
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return im.convert("RGB")


def reference_pixels(image: Image.Image, spec) -> np.ndarray:
    image = image.resize(resized_size(*image.size, spec.resize_to), Image.Resampling.BICUBIC)
    crop = spec.crop_size
    left, top = (image.width - crop) // 2, (image.height - crop) // 2
    pixels = np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return pixels.transpose(2, 0, 1)


def _save(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _ordinary() -> dict[str, bytes]:
    photo = images.photo_like(1600, 1200, seed=7)
    alpha = Image.linear_gradient("L").resize(photo.size)
    rgba = photo.copy()
    rgba.putalpha(alpha)
    grey16 = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    return {
        "jpeg_12mp": images.twelve_megapixel_jpeg(),
        "jpeg_photo": images.jpeg(640, 480, seed=3),
        "png_photo": _save(photo, "PNG"),
        "png_rgba_gradient_alpha": _save(rgba, "PNG"),
        "png_palette_transparency": images.palette_alpha_png(),
        "png_16bit_grey": _save(grey16, "PNG"),
        "tiff_float": _save(photo.convert("F").point(lambda v: v / 255.0), "TIFF"),
        "gif": _save(photo.resize((400, 300)), "GIF"),
        "webp_rgba": _save(rgba.resize((800, 600)), "WEBP", lossless=True),
        "cmyk_jpeg": images.cmyk_jpeg(),
        "exif_rotated": images.exif_rotated_jpeg(6),
        "panorama": images.panorama(),
        "one_bit": _save(photo.convert("1"), "PNG"),
    }


ORDINARY = _ordinary()


@pytest.fixture(scope="module")
def embedder(tiny_model_dir):
    return Embedder.from_dir(tiny_model_dir)


@pytest.mark.parametrize("kind", sorted(ORDINARY))
def test_ordinary_images_embed_as_they_did_before_decoding_was_bounded(embedder, kind):
    spec = embedder.manifest.image
    data = ORDINARY[kind]
    new = embedder.embed_pixels(preprocess(decode_image(data, min_side=spec.resize_to).image, spec)[None])
    old = embedder.embed_pixels(reference_pixels(reference_rgb(data, spec.resize_to), spec)[None])
    assert float(new[0] @ old[0]) >= MIN_COSINE
