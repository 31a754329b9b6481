"""A mutation fuzzer over image bytes through the decoder (Hypothesis): small valid images of every
format, mode and encoding the decoder accepts, damaged by byte flips, overwrites with boundary values,
insertions, deletions and truncation. Every input must decode or raise one of the decoder's precise
errors (`ImageRejected`); anything else would be a 500 on the API or a retried message at ingest.

The budget is fixed (`VS_FUZZ_EXAMPLES`, default 1,000: about two seconds); `make reliability` runs more and
reports the count (written to `VS_FUZZ_COUNT_FILE` when set).
"""

from __future__ import annotations

import io
import os
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.fixtures import images
from visual_search.embedding.decode import DecodeLimits, decode_image
from visual_search.errors import ImageRejected

EXAMPLES = int(os.environ.get("VS_FUZZ_EXAMPLES", "1000"))
LIMITS = DecodeLimits(max_pixels=4_000_000)  # a mutated header may claim a huge size: keep each run fast
BOUNDARY_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)


def _save(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@cache
def seeds() -> tuple[bytes, ...]:
    photo = images.photo_like(48, 32)
    exif = Image.Exif()
    exif[0x0112] = 6
    grey16 = Image.fromarray(np.arange(48 * 32, dtype=np.uint16).reshape(32, 48) * 40)
    return (
        _save(photo, "JPEG", quality=80),
        _save(photo, "JPEG", progressive=True, exif=exif),
        _save(photo.convert("CMYK"), "JPEG"),
        _save(photo, "PNG"),
        _save(photo.convert("RGBA"), "PNG", exif=exif),
        _save(photo.convert("P"), "PNG", transparency=0),
        _save(photo.convert("LA"), "PNG"),
        _save(photo.convert("1"), "PNG"),
        _save(grey16, "PNG"),
        _save(photo, "GIF"),
        _save(photo, "BMP"),
        _save(photo.convert("RGBA"), "WEBP"),
        _save(photo, "WEBP", lossless=True),
        _save(photo.convert("F"), "TIFF", compression="tiff_adobe_deflate"),
        _save(photo.convert("CMYK"), "TIFF", compression="packbits"),
        _save(photo, "TIFF", compression="jpeg"),
        _save(grey16, "TIFF"),
        images.animated_gif(),
        images.multipage_tiff(),
    )


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**16), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 2**16), st.sampled_from(BOUNDARY_BYTES)),
    st.tuples(st.just("insert"), st.integers(0, 2**16), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 2**16), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.integers(0, 2**16), st.just(0)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    out = bytearray(data)
    for op, at, arg in ops:
        if not out:
            break
        at %= len(out)
        if op == "flip":
            out[at] ^= 1 << arg
        elif op == "set":
            out[at] = arg
        elif op == "insert":
            out[at:at] = arg
        elif op == "delete":
            del out[at : at + arg]
        else:
            del out[at:]
    return bytes(out)


def _count_input() -> None:
    path = os.environ.get("VS_FUZZ_COUNT_FILE")
    if path:
        with Path(path).open("a") as fh:
            fh.write("1\n")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns on each damaged TIFF tag and EXIF block
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(seed=st.integers(0, 10_000), ops=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_images_decode_or_fail_with_a_precise_error(seed, ops):
    original = seeds()[seed % len(seeds())]
    data = mutate(original, ops)
    _count_input()
    try:
        decoded = decode_image(data, LIMITS, min_side=16)
    except ImageRejected:
        return
    assert decoded.image.mode == "RGB"
    assert decoded.width > 0
    assert decoded.height > 0


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_seeds_are_valid_and_damaging_them_reaches_the_decoders_error_paths():
    # The fuzzer is only worth its budget if it starts from images that decode and its mutations reach
    # the error paths. A multi-frame GIF or TIFF cut after its first frame still decodes (first frame).
    refused = 0
    for original in seeds():
        assert decode_image(original, LIMITS, min_side=16).image.mode == "RGB"
        try:
            decode_image(mutate(original, [("truncate", len(original) * 2 // 3, 0)]), LIMITS, min_side=16)
        except ImageRejected:
            refused += 1
    assert refused >= len(seeds()) - 2
