"""Hardened image decoding: untrusted bytes in, an RGB image the model can use out, or a precise error.

The same path serves indexing and search-by-image. Order matters for safety: the byte limit is checked
before reading; the format allow-list, the pixel limit and the memory the decode will need
(`decode_cost`) are checked from the header before any pixel is decoded; the decode then waits for its
share of the process's decoding memory (`DecodeGate`). Large JPEGs are decoded at a reduced scale
(`draft`) so a 12 MP photo costs little; other formats are reduced by an integer box filter, strip by
strip, before any conversion, so no full-size copy is made beyond the decoder's own raster. Every
failure is one of the `ImageRejected` types (`tests/unit/test_decode_fuzz.py` mutates images to check).
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from visual_search.errors import (
    CorruptImage,
    DecompressionBomb,
    DependencyUnavailable,
    EmptyImage,
    ImageTooLarge,
    UnsupportedImageFormat,
)

# Raster formats browsers and cameras produce. SVG, PDF, PSD, EPS (which runs Ghostscript) and the
# long tail of Pillow plugins are refused: they widen the attack surface for no user benefit.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
FORMAT_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}

# JPEGs decode (libjpeg's scaled IDCT, `draft`) with the shortest side at least 2x the model's input
# side. Judged by what matters, the embedding: on real photos (scikit-image's retina and mosaics of its
# photos at native resolution, 15 JPEGs, ViT-B/32 fp32) the cosine to full decoding was >= 0.999996 at 2x,
# while 1.5x fell to 0.99990 (tests/parity/test_preprocess_parity.py holds the 0.9999 bar). Pixels differ
# more than that suggests (retina at half scale: max 0.14 in [0, 1] units, mean 0.002): the resize to the
# model side averages the difference away. A 12 MP photo then decodes at a quarter scale, not a half.
DRAFT_OVERSAMPLE = 2
# Other formats are box-reduced before conversion keeping at least 4x the model side: there the reduction
# bounds memory more than it saves time, and 4x keeps preprocessing pixel-equal to transformers' within
# the parity bar.
REDUCE_OVERSAMPLE = 4

# Whatever the target size, the RGB image a decode returns has at most this many pixels (64 MB): a
# 50 MP image is reduced 2x before conversion even when it is too narrow for the target to reduce it.
REDUCED_MAX_PIXELS = 16_000_000
# Conversion works on strips of about this many pixels; STRIP_COPIES bounds the copies one strip makes
# on its way to RGB (crop, high-depth array, RGBA, alpha band, RGB, reduced).
STRIP_PIXELS = 1_000_000
STRIP_COPIES = 6

HIGH_DEPTH_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pillow's plugins parse headers and metadata (EXIF, TIFF tags, ICC) in Python, so damaged input can
# surface as any of these, not only OSError; each becomes CorruptImage (tests/unit/test_decode_fuzz.py
# mutates images to check). MemoryError is not here: it is the process's state, not the input's.
DECODER_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    RecursionError,
)

ImageSource = bytes | bytearray | memoryview | str | Path | Image.Image


class DecodeGate:
    """A semaphore counted in bytes: decodes reserve what `decode_cost` says they will hold, and wait
    while the process's decodes in flight already hold `capacity`. Small images decode side by side; two
    images at the pixel limit decode one after the other, so N requests cannot multiply the peak.

    A decode that waits longer than `wait_s` is refused as an unavailable dependency (429 with
    Retry-After on the API): the caller retries later instead of holding a request past its deadline.
    """

    def __init__(self, capacity: int, wait_s: float = 8.0):
        self.capacity, self.wait_s = capacity, wait_s
        # Pillow allocates rasters in 16 MB blocks by default: under glibc's (dynamic, up to 32 MB) mmap
        # threshold, so a freed raster stays in the heap of the thread that freed it, and three decodes
        # on three threads, one after the other, held 596 MB for a 50 MP float TIFF. Blocks above the
        # threshold are mapped and unmapped: 409 MB. Process-wide, and harmless to other Pillow users.
        Image.core.set_block_size(PILLOW_BLOCK_BYTES)
        self._used = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        nbytes = min(nbytes, self.capacity)
        with self._cond:
            if not self._cond.wait_for(lambda: self._used + nbytes <= self.capacity, self.wait_s):
                raise DependencyUnavailable("too many large images are being decoded; retry shortly")
            self._used += nbytes
        try:
            yield
        finally:
            with self._cond:
                self._used -= nbytes
                self._cond.notify_all()


# Enough for the costliest image the 50 MP limit admits to decode alone (a progressive CMYK JPEG: 392 MB
# of DCT coefficients, ~430 MB in all); every other mode at the limit needs at most ~280 MB, and smaller
# images decode side by side. Below the 600 MB growth docs/guarantees.md promises, with room for the model.
DEFAULT_DECODE_BYTES = 512 * 2**20
WEBP_BYTES_PER_PIXEL = 16
PILLOW_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class DecodeLimits:
    """`max_decode_bytes` bounds one decode's memory (see `decode_cost`); `gate` bounds the sum over the
    process's concurrent decodes. Build one DecodeLimits per process (bootstrap does) so they share it."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_decode_bytes: int = DEFAULT_DECODE_BYTES
    gate: DecodeGate = field(default_factory=lambda: DecodeGate(DEFAULT_DECODE_BYTES), compare=False)


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image. `width`/`height` are the original's, after EXIF orientation (for documents)."""

    image: Image.Image
    format: str
    width: int
    height: int


def decode_image(
    source: ImageSource, limits: DecodeLimits | None = None, min_side: int | None = None
) -> DecodedImage:
    """Decode `source` to an upright RGB image.

    `min_side` lets the image decode at a reduced scale while keeping the shortest side at least
    `DRAFT_OVERSAMPLE * min_side` pixels for JPEGs (in the decoder) and `REDUCE_OVERSAMPLE * min_side`
    for other formats (an integer box reduction before any conversion). Whatever `min_side`, the RGB
    image returned has at most `REDUCED_MAX_PIXELS` pixels. Raises an `ImageRejected` subclass on bad
    input, and `DependencyUnavailable` when the process's decoding budget (`limits.gate`) stays full for
    its wait.

    >>> import io
    >>> png = io.BytesIO()
    >>> Image.new("L", (40, 30)).save(png, "PNG")
    >>> decoded = decode_image(png.getvalue())
    >>> decoded.image.mode, decoded.image.size
    ('RGB', (40, 30))
    """
    limits = limits or DecodeLimits()
    if isinstance(source, Image.Image):
        _check_pixels(source.size, limits)
        return _decode_opened(source, limits, min_side)
    data = _read_bounded(source, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DecompressionBomb(f"image has more than {limits.max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise UnsupportedImageFormat(
            f"not an image, or not one of the supported formats ({', '.join(ALLOWED_FORMATS)})"
        ) from None
    except DECODER_ERRORS as exc:
        raise CorruptImage(f"cannot read the image header: {_describe(exc)}") from None
    _check_pixels(im.size, limits)
    return _decode_opened(im, limits, min_side)


def _decode_opened(im: Image.Image, limits: DecodeLimits, min_side: int | None) -> DecodedImage:
    """Header checked; now decode under the process's memory budget, reduce, convert, orient."""
    fmt = _format_of(im)
    full_size = im.size
    try:
        if min_side and im.format == "JPEG":
            _draft(im, min_side * DRAFT_OVERSAMPLE)
        factor = reduction_factor(im.size, min_side * REDUCE_OVERSAMPLE if min_side else None)
        cost = decode_cost(im, factor, full_size)
        if cost > limits.max_decode_bytes:
            raise DecompressionBomb(
                f"decoding this {full_size[0]}x{full_size[1]} {im.mode} image needs about"
                f" {cost // 2**20:,} MB; the limit is {limits.max_decode_bytes // 2**20:,} MB"
            )
        with limits.gate.reserve(cost):
            im.load()
            orientation = _orientation(im)
            rgb = _to_rgb_reduced(im, factor)
    except DECODER_ERRORS as exc:
        raise CorruptImage(f"cannot decode the image: {_describe(exc)}") from None
    method = ORIENTATION_TRANSPOSE.get(orientation)
    if method is not None:
        rgb = rgb.transpose(method)
    width, height = full_size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return DecodedImage(rgb, fmt, width, height)


def _read_bounded(source: bytes | bytearray | memoryview | str | Path, limits: DecodeLimits) -> bytes:
    if isinstance(source, (str, Path)):
        path = Path(source)
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageTooLarge(f"image is {size:,} bytes; the limit is {limits.max_bytes:,}")
        source = path.read_bytes()
    data = bytes(source)
    if not data:
        raise EmptyImage("image is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(f"image is {len(data):,} bytes; the limit is {limits.max_bytes:,}")
    return data


def _check_pixels(size: tuple[int, int], limits: DecodeLimits) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptImage(f"image header gives an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise DecompressionBomb(
            f"image is {width}x{height} pixels; the limit is {limits.max_pixels:,} pixels"
        )


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 when absent). Read after `load`: for a PNG, `getexif` decodes the whole
    image to reach an eXIf chunk after the pixels, and that decode must be inside the budget and the
    error handling."""
    value = im.getexif().get(0x0112, 1)
    return value if isinstance(value, int) else 1


def image_content_type(data: bytes) -> str:
    """The MIME type of the accepted image format `data` opens as (its header only), else
    application/octet-stream: what a stored file is served as, whatever its name says."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as im:
            return Image.MIME.get(im.format or "", "application/octet-stream")
    except Exception:  # any file Pillow cannot open as one of those formats is not served as an image
        return "application/octet-stream"


def _format_of(im: Image.Image) -> str:
    return FORMAT_EXTENSIONS.get(im.format or "", (im.format or "unknown").lower())


def _draft(im: Image.Image, want_short: int) -> None:
    w, h = im.size
    short = min(w, h)
    if short >= 2 * want_short:
        scale = want_short / short
        im.draft(None, (max(1, int(w * scale)), max(1, int(h * scale))))


def reduction_factor(size: tuple[int, int], want_short: int | None) -> int:
    """The integer box-reduction factor applied before conversion.

    With a target (`want_short`), reduce while the shortest side stays at least `want_short` — only when
    it halves the image at least, as `_draft` does for JPEGs, so ordinary photos are converted exactly as
    before. Whatever the target, reduce until the result has at most `REDUCED_MAX_PIXELS`.
    """
    w, h = size
    factor = 1
    if want_short and min(w, h) >= 2 * want_short:
        factor = min(w, h) // want_short
    while -(-w // factor) * -(-h // factor) > REDUCED_MAX_PIXELS:
        factor += 1
    return factor


def decode_cost(im: Image.Image, factor: int, full_size: tuple[int, int]) -> int:
    """Bytes a decode of the opened image will hold at its peak, from the header alone.

    The raster Pillow allocates (pixels x its bytes per pixel: 1 for 1/L/P, 2 for I;16, 4 for every
    other mode, RGB included), the decoder's own buffer where it has one, the strips converted at a time,
    and the reduced RGB result.
    """
    w, h = im.size
    raw = w * h * _pixel_bytes(im.mode)
    buffer = 0
    if im.format == "WEBP":
        # Pillow's WebP plugin (an animation decoder, even for one frame) holds libwebp's RGBA buffer and
        # its copies: measured 15.3 bytes per pixel on a 7000x7000 RGBA WebP.
        buffer = w * h * (WEBP_BYTES_PER_PIXEL - 4)
    elif im.format == "TIFF":
        buffer = _tiff_chunk_bytes(im)
    elif im.format == "JPEG" and im.info.get("progressive"):
        buffer = _jpeg_coefficient_bytes(im, full_size)
    strips = min(h, _strip_rows(w, factor)) * w * STRIP_COPIES * 4
    out = -(-w // factor) * -(-h // factor) * 4
    return raw + buffer + strips + out


def _jpeg_coefficient_bytes(im: Image.Image, full_size: tuple[int, int]) -> int:
    """A progressive JPEG keeps every DCT coefficient (2 bytes) of every component, at full resolution
    whatever the draft scale, until its last scan: 2 bytes per pixel per component, less for
    subsampled chroma (4:2:0 RGB: 3 bytes per pixel; CMYK: 8)."""
    layers = getattr(im, "layer", None) or [(None, 1, 1, None)] * len(im.getbands())
    h_max = max(int(layer[1]) for layer in layers) or 1
    v_max = max(int(layer[2]) for layer in layers) or 1
    per_pixel = sum(int(layer[1]) * int(layer[2]) for layer in layers) / (h_max * v_max)
    return int(full_size[0] * full_size[1] * per_pixel * 2)


def _pixel_bytes(mode: str) -> int:
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _tiff_chunk_bytes(im: Image.Image) -> int:
    """libtiff reads one strip or tile at a time into a buffer of its decoded size: a whole image when
    the file has a single strip."""
    tags = getattr(im, "tag_v2", {})
    w, h = im.size
    bits = tags.get(258, (8,))
    bits_per_pixel = sum(bits) if isinstance(bits, tuple) else int(bits) * int(tags.get(277, 1))
    if 322 in tags and 323 in tags:
        pixels = int(tags[322]) * int(tags[323])
    else:
        pixels = w * min(h, int(tags.get(278, h)))
    return pixels * max(1, bits_per_pixel) // 8


def _strip_rows(width: int, factor: int) -> int:
    """Rows converted at a time: about STRIP_PIXELS, a multiple of the reduction factor (so strips
    reduce exactly as the whole image would)."""
    rows = max(1, STRIP_PIXELS // max(1, width))
    return max(factor, rows // factor * factor)


def _to_rgb_reduced(im: Image.Image, factor: int) -> Image.Image:
    """The loaded image to RGB, reduced by `factor`, a strip of rows at a time.

    Converting the whole raster at once costs several copies of it (RGBA -> RGB on white took four);
    strip by strip the extra memory is a few strips and the (reduced) result. Every step is per pixel
    except the reduction, and strips are whole multiples of the factor, so the result equals converting
    the whole image and then reducing it.
    """
    w, h = im.size
    if factor == 1 and im.mode == "RGB":
        return im
    peak = _high_depth_peak(im) if im.mode in HIGH_DEPTH_MODES else 0.0
    out = Image.new("RGB", (-(-w // factor), -(-h // factor)))
    rows = _strip_rows(w, factor)
    for top in range(0, h, rows):
        strip = _to_rgb(im.crop((0, top, w, min(h, top + rows))), peak)
        if factor > 1:
            strip = strip.reduce(factor)
        out.paste(strip, (0, top // factor))
    return out


def _to_rgb(im: Image.Image, peak: float = 0.0) -> Image.Image:
    """Any mode to RGB: transparency composited on white (as CLIPImageProcessor does), 16-bit scaled."""
    if im.mode in HIGH_DEPTH_MODES:
        im = _high_depth_to_l(im, peak)
    if "A" in im.getbands() or im.info.get("transparency") is not None:
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        # The straight-alpha blend onto opaque white: what alpha_composite gives, in one RGB copy.
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return im if im.mode == "RGB" else im.convert("RGB")


def _high_depth_peak(im: Image.Image) -> float:
    """The value that maps to white: 1.0 for float images in [0, 1], 65535 for 16-bit data (or 32-bit
    integers above 255), else 255. Computed over the whole image, one strip at a time."""
    if im.mode.startswith("I;16"):
        return 65535.0
    w, h = im.size
    rows = _strip_rows(w, 1)
    top_value = -np.inf
    for top in range(0, h, rows):
        strip = np.asarray(im.crop((0, top, w, min(h, top + rows))))
        if strip.size:
            value = np.nanmax(strip) if im.mode == "F" else strip.max()
            top_value = max(top_value, float(value))
    if im.mode == "F":
        return 1.0 if top_value <= 1.0 else 255.0
    return 65535.0 if top_value > 255 else 255.0


def _high_depth_to_l(im: Image.Image, peak: float) -> Image.Image:
    """16/32-bit integer or float grey to 8-bit L, scaled by `peak`, in float32 (never float64)."""
    arr = np.asarray(im).astype(np.float32)
    if im.mode == "F":
        np.nan_to_num(arr, copy=False)
    arr *= np.float32(255.0 / peak)
    np.clip(arr, 0, 255, out=arr)
    return Image.fromarray(np.rint(arr).astype(np.uint8))  # uint8 2-D -> mode L


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
