"""Real photos without a download: scikit-image's sample photos, the 200 face photos of its LFW subset,
and deterministic variants of the larger photos (crops, flips, rotations, brightness and contrast,
down-scaling, JPEG re-encodes at several qualities), each returned as encoded bytes so the embedder's
own decoding runs on them.

    corpus(1000)            # >= 1,000 (name, bytes), the same on every run
    calibration_images(32)  # PIL images for static quantization, from a different seed than corpus()
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import skimage.data
from PIL import Image, ImageEnhance, ImageOps

# Photographs only: the synthetic images (checkerboard, colour wheel, logo, phantom, binary blobs) and
# `cat` (the same photo as `chelsea`) are left out.
PHOTOS = [
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina", "rocket", "text",
]  # fmt: skip


@cache
def base_photos() -> dict[str, Image.Image]:
    """The larger photos, RGB, by name (the stereo pair counts as two)."""
    photos = {name: _rgb(getattr(skimage.data, name)()) for name in PHOTOS}
    left, right, _ = skimage.data.stereo_motorcycle()
    photos["motorcycle_left"], photos["motorcycle_right"] = _rgb(left), _rgb(right)
    return photos


@cache
def faces() -> tuple[Image.Image, ...]:
    """LFW's 200 face photos (25 × 25 grey), scaled to 100 × 100."""
    return tuple(
        _rgb((face * 255).astype(np.uint8)).resize((100, 100), Image.Resampling.BICUBIC)
        for face in skimage.data.lfw_subset()
    )


def corpus(n: int = 1000, seed: int = 0) -> list[tuple[str, bytes]]:
    """At least `n` photos as (name, PNG or JPEG bytes): every base photo and face as it is, then
    variants of the base photos in turn until there are `n`."""
    rng = np.random.default_rng(seed)
    items = [(name, _encode(im, rng)) for name, im in base_photos().items()]
    items += [(f"face{i:03d}", _encode(im, rng)) for i, im in enumerate(faces())]
    names = list(base_photos())
    k = 0
    while len(items) < n:
        name = names[k % len(names)]
        items.append((f"{name}~{k // len(names)}", _encode(variant(base_photos()[name], rng), rng)))
        k += 1
    return items


def calibration_images(n: int = 32, seed: int = 12345) -> list[Image.Image]:
    """`n` variants of the base photos (one per photo in turn), for calibrating static quantization."""
    rng = np.random.default_rng(seed)
    photos = list(base_photos().values())
    return [variant(photos[i % len(photos)], rng) for i in range(n)]


def variant(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop (35-100% of the area, aspect 3:4 to 4:3), maybe flipped or rotated, with changed
    brightness and contrast, maybe down-scaled."""
    w, h = im.size
    area = rng.uniform(0.35, 1.0) * w * h
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = min(w, round(np.sqrt(area * aspect))), min(h, round(np.sqrt(area / aspect)))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = im.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = ImageOps.mirror(out)
    if rng.random() < 0.15:
        out = out.rotate(int(rng.choice([90, 180, 270])), expand=True)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.75, 1.25))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.75, 1.25))
    if rng.random() < 0.3 and min(out.size) > 300:
        scale = rng.uniform(0.5, 0.9)
        out = out.resize((round(out.width * scale), round(out.height * scale)), Image.Resampling.BILINEAR)
    return out


def _encode(im: Image.Image, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    if rng.random() < 0.25:
        im.save(buf, format="PNG")
    else:
        im.save(buf, format="JPEG", quality=int(rng.integers(50, 96)))
    return buf.getvalue()


def _rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array).convert("RGB")
