"""Image preprocessing for every model family, from the manifest's `ImageSpec`, equal to the reference
processor of each: transformers' CLIPImageProcessor and SiglipImageProcessor (PIL backend) and
OpenCLIP's torchvision transform.

Steps: resize, either the shortest side to `resize_to` keeping the aspect ratio (long side truncated,
as transformers and torchvision compute it) and then a centre crop of `crop_size` (offsets rounded
down as transformers does, or to the nearest as torchvision does), or straight to a `resize_to` square
(SigLIP: no crop); with the model's interpolation; rescale by 1/255; normalise with the model's mean
and std.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from visual_search.embedding.manifest import ImageSpec

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def resized_size(width: int, height: int, shortest: int) -> tuple[int, int]:
    """Target (width, height) with the shortest side equal to `shortest`, as transformers computes it."""
    if width <= height:
        return shortest, int(shortest * height / width)
    return int(shortest * width / height), shortest


def crop_offset(length: int, crop: int, rounding: str) -> int:
    """Where a centre crop of `crop` starts in `length`: rounded down (transformers) or to the nearest,
    halves to even (torchvision's `int(round(...))`)."""
    return (length - crop) // 2 if rounding == "floor" else round((length - crop) / 2.0)


def preprocess(image: Image.Image, spec: ImageSpec) -> np.ndarray:
    """RGB PIL image -> float32 array of shape (3, S, S), S = `spec.size`."""
    if image.mode != "RGB":
        raise ValueError(f"preprocess expects an RGB image, got mode {image.mode}")
    resample = FILTERS[spec.interpolation]
    if spec.resize == "square":
        image = image.resize((spec.resize_to, spec.resize_to), resample)
    else:
        image = _resize_and_crop(image, spec, resample)
    mean, std = np.asarray(spec.mean, dtype=np.float32), np.asarray(spec.std, dtype=np.float32)
    scaled = np.asarray(image, dtype=np.float32) * np.float32(spec.rescale_factor)
    return np.ascontiguousarray(((scaled - mean) / std).transpose(2, 0, 1))


def _resize_and_crop(image: Image.Image, spec: ImageSpec, resample: Image.Resampling) -> Image.Image:
    width, height = resized_size(*image.size, spec.resize_to)
    crop = spec.crop_size
    left = crop_offset(width, crop, spec.crop_offsets)
    top = crop_offset(height, crop, spec.crop_offsets)
    # Resize only the part the crop keeps: `box` maps those source pixels to the crop, with the same
    # filter and scale as resizing the whole image and cropping it (a 1:10,000 panorama resized whole
    # would be 224 x 2,240,000 pixels). Pillow's filter still reads source pixels around the box.
    sx, sy = image.width / width, image.height / height
    box = (left * sx, top * sy, (left + crop) * sx, (top + crop) * sy)
    if width >= crop and height >= crop:
        return image.resize((crop, crop), resample, box=box)
    # Resized smaller than the crop (tiny resize_to): pad as crop() does.
    image = image.resize((width, height), resample)
    return image.crop((left, top, left + crop, top + crop))


def preprocess_batch(images: Sequence[Image.Image], spec: ImageSpec) -> np.ndarray:
    """A batch of RGB images -> float32 array of shape (N, 3, S, S), S = `spec.size`."""
    if not images:
        return np.zeros((0, 3, spec.size, spec.size), dtype=np.float32)
    return np.stack([preprocess(im, spec) for im in images])
