import io

import numpy as np
import pytest
from PIL import Image

from tests.fixtures import images
from visual_search import errors
from visual_search.embedding.decode import DRAFT_OVERSAMPLE, DecodeLimits, decode_image


@pytest.mark.parametrize("kind", sorted(images.CORPUS))
def test_every_corpus_image_decodes_to_rgb_or_fails_with_its_precise_error(kind):
    factory, expected_error = images.CORPUS[kind]
    data = factory()
    if expected_error is None:
        decoded = decode_image(data, min_side=224)
        assert decoded.image.mode == "RGB"
        assert decoded.width > 0
        assert decoded.height > 0
    else:
        with pytest.raises(getattr(errors, expected_error)) as info:
            decode_image(data)
        assert isinstance(info.value, errors.ImageRejected)
        assert str(info.value)


def test_byte_limit_is_checked_before_decoding():
    data = images.jpeg()
    with pytest.raises(errors.ImageTooLarge, match="limit"):
        decode_image(data, DecodeLimits(max_bytes=len(data) - 1))


def test_byte_limit_applies_to_files_without_reading_them(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(images.jpeg())
    with pytest.raises(errors.ImageTooLarge):
        decode_image(path, DecodeLimits(max_bytes=10))


def test_pixel_limit_refuses_from_the_header():
    with pytest.raises(errors.DecompressionBomb, match="320x240"):
        decode_image(images.jpeg(320, 240), DecodeLimits(max_pixels=320 * 240 - 1))


def test_pixel_limit_applies_to_pil_images_too():
    with pytest.raises(errors.DecompressionBomb):
        decode_image(Image.new("RGB", (100, 100)), DecodeLimits(max_pixels=9_999))


def test_exif_orientation_is_applied_and_reported_upright():
    decoded = decode_image(images.exif_rotated_jpeg(orientation=6))
    assert (decoded.width, decoded.height) == (200, 400)
    assert decoded.image.size == (200, 400)


def test_transparency_is_composited_on_white():
    decoded = decode_image(images.rgba_png())
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)


def test_palette_transparency_is_white_and_opaque_colour_kept():
    decoded = decode_image(images.palette_alpha_png())
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)
    assert decoded.image.getpixel((20, 20)) == (0, 0, 255)


def test_16_bit_grey_is_scaled_not_clipped():
    decoded = decode_image(images.png_16bit_grey())
    values = np.asarray(decoded.image)[..., 0]
    assert values.min() == 0
    assert values.max() == 255
    assert len(np.unique(values)) > 200  # a ramp, not a saturated white image


def test_animated_gif_uses_its_first_frame():
    decoded = decode_image(images.animated_gif())
    assert decoded.image.getpixel((5, 5)) == (255, 0, 0)
    assert decoded.format == "gif"


def test_multipage_tiff_uses_its_first_page():
    decoded = decode_image(images.multipage_tiff())
    assert decoded.image.size == (30, 20)
    assert decoded.image.getpixel((1, 1)) == (10, 20, 30)


def test_cmyk_jpeg_becomes_rgb():
    decoded = decode_image(images.cmyk_jpeg())
    assert decoded.image.mode == "RGB"
    assert decoded.format == "jpg"


def test_large_jpeg_is_decoded_at_reduced_scale_but_reports_its_full_size():
    decoded = decode_image(images.twelve_megapixel_jpeg(), min_side=224)
    assert (decoded.width, decoded.height) == (4000, 3000)
    assert min(decoded.image.size) >= DRAFT_OVERSAMPLE * 224
    assert decoded.image.size[0] * decoded.image.size[1] <= 4000 * 3000 / 4


def test_reduced_scale_is_not_used_without_a_target_size():
    decoded = decode_image(images.jpeg(1200, 1000))
    assert decoded.image.size == (1200, 1000)


def test_format_outside_the_allow_list_is_refused_even_if_pillow_reads_it():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PPM")
    with pytest.raises(errors.UnsupportedImageFormat, match="supported formats"):
        decode_image(buf.getvalue())


def test_image_errors_are_bad_input_so_they_are_never_retried():
    with pytest.raises(errors.BadInput):
        decode_image(images.empty())
