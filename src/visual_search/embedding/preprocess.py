"""CLIP image preprocessing, equal to transformers' CLIPImageProcessor (PIL backend).

Steps: resize so the shortest side is `resize_to` (bicubic, long side truncated like transformers),
centre-crop `crop_size` (offsets rounded down, as transformers does; torchvision rounds), rescale by
1/255, normalise with the model's mean and std.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from visual_search.embedding.manifest import ImageSpec


def resized_size(width: int, height: int, shortest: int) -> tuple[int, int]:
    """Target (width, height) with the shortest side equal to `shortest`, as transformers computes it."""
    if width <= height:
        return shortest, int(shortest * height / width)
    return int(shortest * width / height), shortest


def preprocess(image: Image.Image, spec: ImageSpec) -> np.ndarray:
    """RGB PIL image -> float32 array of shape (3, crop_size, crop_size)."""
    if image.mode != "RGB":
        raise ValueError(f"preprocess expects an RGB image, got mode {image.mode}")
    width, height = resized_size(*image.size, spec.resize_to)
    crop = spec.crop_size
    left = (width - crop) // 2
    top = (height - crop) // 2
    # Resize only the part the crop keeps: `box` maps those source pixels to the crop, with the same
    # filter and scale as resizing the whole image and cropping it (a 1:10,000 panorama resized whole
    # would be 224 x 2,240,000 pixels). Pillow's filter still reads source pixels around the box.
    sx, sy = image.width / width, image.height / height
    box = (left * sx, top * sy, (left + crop) * sx, (top + crop) * sy)
    if width >= crop and height >= crop:
        image = image.resize((crop, crop), Image.Resampling.BICUBIC, box=box)
    else:  # resized smaller than the crop (tiny resize_to): pad as crop() does
        image = image.resize((width, height), Image.Resampling.BICUBIC)
        image = image.crop((left, top, left + crop, top + crop))
    mean, std = np.asarray(spec.mean, dtype=np.float32), np.asarray(spec.std, dtype=np.float32)
    scaled = np.asarray(image, dtype=np.float32) * np.float32(spec.rescale_factor)
    return np.ascontiguousarray(((scaled - mean) / std).transpose(2, 0, 1))


def preprocess_batch(images: Sequence[Image.Image], spec: ImageSpec) -> np.ndarray:
    """A batch of RGB images -> float32 array of shape (N, 3, crop_size, crop_size)."""
    if not images:
        return np.zeros((0, 3, spec.crop_size, spec.crop_size), dtype=np.float32)
    return np.stack([preprocess(im, spec) for im in images])
