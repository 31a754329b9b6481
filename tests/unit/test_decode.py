import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tests.fixtures import images
from visual_search import errors
from visual_search.embedding.decode import (
    DRAFT_OVERSAMPLE,
    REDUCE_OVERSAMPLE,
    DecodeGate,
    DecodeLimits,
    decode_cost,
    decode_image,
    reduction_factor,
)


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
    assert decoded.image.size == (1000, 750)  # a quarter scale: 750 >= 2 x 224, an eighth would be 375


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


# -- Decoding bounded by memory
def test_a_truncated_png_is_corrupt_not_an_unhandled_error():
    with pytest.raises(errors.CorruptImage, match="cannot decode"):
        decode_image(images.png_first_60_bytes(), min_side=224)


def test_a_png_with_a_corrupt_pixel_stream_is_corrupt():
    with pytest.raises(errors.CorruptImage):
        decode_image(images.png_corrupt_idat())


def test_an_image_needing_more_decoding_memory_than_the_limit_is_refused_from_its_header():
    data = images.png(1000, 1000)  # an RGB raster of 4 MB (Pillow keeps RGB in 4 bytes a pixel)
    with pytest.raises(errors.DecompressionBomb, match="MB; the limit is"):
        decode_image(data, DecodeLimits(max_decode_bytes=3_000_000))


def test_decode_cost_counts_the_raster_at_pillows_bytes_per_pixel():
    grey16 = Image.open(io.BytesIO(images.png_16bit_grey()))
    rgba = Image.open(io.BytesIO(images.rgba_png()))
    assert decode_cost(grey16, 1, grey16.size) >= 64 * 64 * 2
    assert decode_cost(rgba, 1, rgba.size) >= 40 * 40 * 4 * 2  # raster + result


def test_a_single_strip_tiff_counts_libtiffs_whole_image_buffer():
    buf = io.BytesIO()
    Image.new("F", (500, 400), 0.5).save(buf, "TIFF", compression="tiff_adobe_deflate", strip_size=2**30)
    one_strip = Image.open(buf)
    buf = io.BytesIO()
    Image.new("F", (500, 400), 0.5).save(buf, "TIFF", compression="tiff_adobe_deflate")
    many = Image.open(buf)
    assert decode_cost(one_strip, 1, one_strip.size) - decode_cost(many, 1, many.size) > 500 * 350 * 4


def test_large_non_jpeg_images_are_box_reduced_before_conversion_keeping_the_target_side():
    decoded = decode_image(images.png(2000, 1800), min_side=224)
    assert (decoded.width, decoded.height) == (2000, 1800)
    assert decoded.image.size == (1000, 900)  # factor 1800 // 896 = 2
    assert min(decoded.image.size) >= REDUCE_OVERSAMPLE * 224


def test_the_rgb_result_never_exceeds_the_reduced_pixel_cap_even_without_a_target():
    assert reduction_factor((7000, 7000), None) == 2  # 49 MP -> 12.25 MP
    assert reduction_factor((4000, 3000), None) == 1
    assert reduction_factor((10, 40_000_000), None) == 5  # ceil(10/k) * ceil(40M/k) <= 16 MP


def test_strip_conversion_equals_whole_image_conversion():
    im = images.photo_like(300, 700)
    im.putalpha(Image.linear_gradient("L").resize((300, 700)))
    data = io.BytesIO()
    im.save(data, "PNG")
    expected = Image.new("RGB", im.size, (255, 255, 255))
    expected.paste(im, mask=im.getchannel("A"))
    expected = expected.reduce(3)
    with_strips = decode_image(data.getvalue(), DecodeLimits(), min_side=10)  # factor 700 // 40 -> 7
    assert with_strips.image.size == (43, 100)
    import visual_search.embedding.decode as decode_module

    original = decode_module.STRIP_PIXELS
    try:
        decode_module.STRIP_PIXELS = 300 * 9  # strips of 9 rows: many strips, each a multiple of 3
        strips = decode_module._to_rgb_reduced(Image.open(io.BytesIO(data.getvalue())), 3)
    finally:
        decode_module.STRIP_PIXELS = original
    assert np.array_equal(np.asarray(strips), np.asarray(expected))


def test_high_depth_images_scale_in_float32_without_a_float64_copy():
    # 32-bit integers above 255 are 16-bit data; floats in [0, 1] are unit data.
    ints = Image.fromarray(np.full((20, 30), 65535, dtype=np.int32), mode="I")
    floats = Image.fromarray(np.full((20, 30), 0.5, dtype=np.float32), mode="F")
    assert decode_image(ints).image.getpixel((0, 0)) == (255, 255, 255)
    assert decode_image(floats).image.getpixel((0, 0)) == (128, 128, 128)


def test_the_gate_lets_small_decodes_share_it_and_serialises_large_ones():
    gate = DecodeGate(capacity=100, wait_s=5)
    inside, most = [], []
    lock = threading.Lock()

    def hold(nbytes):
        with gate.reserve(nbytes):
            with lock:
                inside.append(nbytes)
                most.append(sum(inside))
            time.sleep(0.05)
            with lock:
                inside.remove(nbytes)

    threads = [threading.Thread(target=hold, args=(n,)) for n in (60, 60, 60, 10, 10, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(most) <= 100


def test_a_decode_waiting_too_long_for_the_gate_is_retryable_not_a_hang():
    gate = DecodeGate(capacity=100, wait_s=0.05)
    with gate.reserve(100), pytest.raises(errors.DependencyUnavailable, match="retry"), gate.reserve(1):
        pass


def test_a_decode_larger_than_the_gate_still_runs_alone():
    gate = DecodeGate(capacity=100, wait_s=0.05)
    with gate.reserve(10_000):
        pass
