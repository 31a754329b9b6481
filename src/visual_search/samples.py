"""Sample images for the demo, generated (no binary files in git): simple scenes of coloured shapes
whose names say what they show, so text searches have something to find with a real model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
}
SHAPES = ("circle", "square", "triangle", "stripes")
BACKGROUNDS = {"white": (245, 245, 245), "black": (20, 20, 20)}


def _scene(
    colour: tuple[int, int, int], shape: str, background: tuple[int, int, int], seed: int
) -> Image.Image:
    rng = np.random.default_rng(seed)
    size = (640, 480)
    im = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(im)
    cx, cy, r = (
        320 + int(rng.integers(-80, 80)),
        240 + int(rng.integers(-60, 60)),
        int(rng.integers(110, 170)),
    )
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        for x in range(0, size[0], 80):
            draw.rectangle((x, 0, x + 40, size[1]), fill=colour)
    noise = rng.normal(0, 6, (size[1], size[0], 3))
    arr = np.clip(np.asarray(im, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.8))


def write_samples(folder: Path) -> list[Path]:
    """Write the sample set (48 JPEGs in folders by shape) plus two near-duplicates; returns the paths."""
    written = []
    seed = 0
    for shape in SHAPES:
        for colour_name, colour in COLOURS.items():
            for bg_name, bg in BACKGROUNDS.items():
                path = folder / shape / f"{colour_name}-{shape}-on-{bg_name}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                _scene(colour, shape, bg, seed).save(path, quality=88)
                written.append(path)
                seed += 1
    # Near-duplicates: a re-encode and a resize of one sample, for the duplicates report.
    original = Image.open(written[0])
    dupes = folder / "duplicates"
    dupes.mkdir(exist_ok=True)
    buf = io.BytesIO()
    original.save(buf, format="JPEG", quality=60)
    (dupes / "red-circle-reencoded.jpg").write_bytes(buf.getvalue())
    original.resize((320, 240)).save(dupes / "red-circle-small.png")
    written += [dupes / "red-circle-reencoded.jpg", dupes / "red-circle-small.png"]
    return written
