"""Tests for dashboard.images: every user image goes through load_image first."""

from __future__ import annotations

import resource
import shutil
import subprocess
import time
import tracemalloc
import warnings
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from dashboard import errors
from dashboard.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageInputError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)
from dashboard.images import ALLOWED_FORMATS, DEFAULT_MAX_PIXELS, CleanImage, load_image
from tests import imagegen as gen

WHITE = [255, 255, 255]


def pixels(result: CleanImage) -> list[list[int]]:
    return np.asarray(result.image).reshape(-1, 3).tolist()


def refused(exc_type: type[ImageInputError], data, *words: str, **kw) -> str:
    """Assert load_image refuses ``data`` with ``exc_type`` and a readable message containing ``words``."""
    with pytest.raises(exc_type) as info:
        load_image(data, **kw)
    msg = str(info.value)
    assert len(msg) > 20 and "Traceback" not in msg
    assert not msg.lower().startswith(("cannot identify", "image file is truncated", "image size ("))
    for word in words:
        assert word.lower() in msg.lower(), msg
    return msg


@pytest.fixture
def no_subprocess(monkeypatch):
    """Fail the test if anything tries to start a program (e.g. Ghostscript for EPS/PDF)."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"an external program was started: {args!r}")

    for name in ("Popen", "run", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, forbidden)
    monkeypatch.setattr(shutil, "which", forbidden)


# --- API and result -----------------------------------------------------------------------
def test_constants():
    assert DEFAULT_MAX_PIXELS == 40_000_000
    assert ALLOWED_FORMATS == ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


def test_result_is_detached_rgb_with_metadata():
    data = gen.solid("PNG", (5, 3))
    result = load_image(data)
    assert isinstance(result, CleanImage)
    assert type(result.image) is Image.Image  # a plain in-memory image, not a file-backed ImageFile
    assert result.image.mode == "RGB" and result.image.size == (5, 3)
    assert result.image.info == {}
    assert (result.source_format, result.source_mode, result.source_size) == ("PNG", "RGB", (5, 3))
    assert pixels(result)[0] == list(gen.RED)


def test_no_global_pillow_state_changed():
    before_max, before_filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    load_image(gen.solid("PNG"))
    with pytest.raises(ImageTooLargeError):
        load_image(gen.png_declaring(30000, 30000))
    assert Image.MAX_IMAGE_PIXELS == before_max
    assert warnings.filters == before_filters


# --- empty --------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [None, b"", bytearray(), ""], ids=["none", "empty-bytes", "bytearray", "empty-str"])
def test_nothing_given(source):
    refused(EmptyImageError, source, "upload")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(gen.empty())
    refused(EmptyImageError, path, "empty")
    refused(EmptyImageError, str(path), "empty")


def test_missing_file(tmp_path):
    refused(EmptyImageError, tmp_path / "gone.png", "upload it again")


def test_wrong_type_is_a_programming_error():
    with pytest.raises(TypeError):
        load_image(12345)


# --- not an image / not allowed -----------------------------------------------------------
def test_random_bytes_named_jpg():
    refused(UnsupportedImageFormatError, gen.random_bytes(), ".jpg", "JPEG, PNG", filename="photo.jpg")


def test_random_bytes_without_name():
    refused(UnsupportedImageFormatError, gen.random_bytes(), "not a supported image", "PNG")


@pytest.mark.parametrize(
    ("make", "filename", "word"),
    [
        (gen.svg, "drawing.svg", "SVG"),
        (gen.html, "page.html", "HTML"),
        (gen.psd, "layers.psd", "PSD"),
        (gen.eps, "figure.eps", "EPS"),
        (gen.pdf, "doc.pdf", "PDF"),
        (gen.heic_like, "IMG_0001.heic", "HEIC"),
        (gen.eps, None, "EPS"),
        (gen.psd, "layers.png", "PSD"),
    ],
)
def test_other_file_types_refused_without_running_anything(no_subprocess, make, filename, word):
    refused(UnsupportedImageFormatError, make(), word, "JPEG", filename=filename)


def test_psd_and_eps_would_be_readable_by_pillow():
    """Sanity check of the generators: Pillow's own plugins accept them, so the refusal is ours."""
    assert Image.open(BytesIO(gen.psd())).format == "PSD"
    assert Image.open(BytesIO(gen.eps())).format == "EPS"


def test_tiff_renamed_png_refused():
    refused(UnsupportedImageFormatError, gen.tiff_named_png(), ".png", "TIFF", filename="scan.png")


def test_tiff_renamed_png_refused_from_path(tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(gen.tiff_named_png())
    refused(UnsupportedImageFormatError, path, ".png", "TIFF")
    assert load_image(path, filename="scan.tif").source_format == "TIFF"  # an explicit name wins


@pytest.mark.parametrize("filename", ["a.jpg", "a.JPEG", "a.jpe", "a.jfif", "a", "a.bin", None])
def test_jpeg_with_matching_or_unknown_extension_accepted(filename):
    result = load_image(gen.solid("JPEG", (8, 8), quality=95), filename=filename)
    assert result.source_format == "JPEG"
    assert np.abs(np.asarray(result.image, int) - gen.RED).max() <= 3


def test_jpeg_named_png_refused():
    refused(UnsupportedImageFormatError, gen.solid("JPEG"), ".png", "JPEG", filename="photo.png")


@pytest.mark.parametrize(
    ("fmt", "filename", "kw"),
    [
        ("PNG", "a.png", {}),
        ("WEBP", "a.webp", {"lossless": True}),
        ("GIF", "a.gif", {}),
        ("BMP", "a.bmp", {}),
        ("BMP", "a.dib", {}),
        ("TIFF", "a.tif", {}),
        ("TIFF", "a.tiff", {}),
    ],
)
def test_allowed_formats_accepted(fmt, filename, kw):
    result = load_image(gen.solid(fmt, (6, 4), **kw), filename=filename)
    assert result.source_format == fmt and result.image.size == (6, 4)
    assert pixels(result)[0] == list(gen.RED)


# --- damaged ------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_jpeg(keep):
    refused(CorruptImageError, gen.truncated_jpeg(keep), "damaged", filename="cut.jpg")


def test_truncated_png():
    data = gen.noisy("PNG", (64, 64))
    refused(CorruptImageError, data[: len(data) // 2], "damaged")


# --- size cap -----------------------------------------------------------------------------
def test_png_declaring_30000x30000_refused_fast_without_memory():
    data = gen.png_declaring(30000, 30000)
    assert len(data) < 100
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    start = time.perf_counter()
    try:
        msg = refused(ImageTooLargeError, data, "30000×30000", "900 MP", "40 MP", filename="bomb.png")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_increase_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert elapsed < 1.0, msg
    assert peak < 50 * 2**20
    assert rss_increase_mb < 50


def test_header_cap_below_pillow_limit():
    refused(ImageTooLargeError, gen.png_declaring(7000, 7000), "7000×7000", "49 MP", "40 MP")


def test_pillow_bomb_warning_becomes_refusal():
    # 100 MP is over Pillow's warning threshold (~89 MP) but under our explicit cap:
    # the warning must refuse it instead of decoding.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning must not escape either
        refused(ImageTooLargeError, gen.png_declaring(10000, 10000), "10000×10000", max_pixels=200_000_000)


def test_cap_boundary():
    assert load_image(gen.solid("PNG", (100, 100)), max_pixels=10_000).image.size == (100, 100)
    refused(ImageTooLargeError, gen.solid("PNG", (101, 100)), "101×100", "10,100", "10,000", max_pixels=10_000)


def test_cap_applies_to_pil_input():
    refused(ImageTooLargeError, Image.new("RGB", (101, 100)), "101×100", max_pixels=10_000)


@pytest.mark.parametrize("size", [(1, 1), (10000, 1), (1, 10000)])
def test_extreme_shapes(size):
    result = load_image(gen.solid("PNG", size))
    assert result.image.size == size and pixels(result)[-1] == list(gen.RED)


@pytest.mark.parametrize("size", [(10000, 1), (1, 10000), (51, 1)])
def test_elongated_images_refused_when_a_ratio_is_set(size):
    refused(errors.ImageShapeError, gen.solid("PNG", size), f"{size[0]}×{size[1]}", "50 times",
            max_aspect_ratio=50)


def test_aspect_ratio_boundary():
    assert load_image(gen.solid("PNG", (50, 1)), max_aspect_ratio=50).image.size == (50, 1)
    assert load_image(gen.solid("PNG", (300, 200)), max_aspect_ratio=1.5).image.size == (300, 200)


# --- animation ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gif_1000():
    data = gen.animated_gif(1000)
    assert Image.open(BytesIO(data)).n_frames == 1000
    return data


def test_1000_frame_gif_first_frame_fast(gif_1000):
    start = time.perf_counter()
    result = load_image(gif_1000, filename="anim.gif")
    assert time.perf_counter() - start < 1.0
    assert result.source_format == "GIF" and result.image.size == (16, 16)
    assert set(map(tuple, pixels(result))) == {gen.RED}


def test_animated_webp_and_apng_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in (gen.RED, gen.BLUE, (0, 200, 0))]
    for fmt, kw in (("WEBP", {"lossless": True}), ("PNG", {})):
        data = gen.encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, **kw)
        assert pixels(load_image(data))[0] == list(gen.RED), fmt


def test_multipage_tiff_first_page():
    pages = [Image.new("RGB", (8, 8), c) for c in (gen.BLUE, gen.RED)]
    data = gen.encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert pixels(load_image(data))[0] == list(gen.BLUE)


# --- colour modes -------------------------------------------------------------------------
@pytest.mark.parametrize("make", [gen.p_transparent_png, gen.rgba_png])
def test_transparent_becomes_white_opaque_keeps_colour(make):
    result = load_image(make())
    assert pixels(result) == [WHITE, list(gen.RED)]


def test_transparent_gif():
    im = Image.open(BytesIO(gen.p_transparent_png()))
    data = gen.encode(im, "GIF", transparency=0)
    assert pixels(load_image(data)) == [WHITE, list(gen.RED)]


def test_la():
    result = load_image(gen.la_png())
    assert result.source_mode == "LA" and pixels(result) == [WHITE, [60, 60, 60]]


@pytest.mark.parametrize(
    ("mode", "transparent", "opaque", "expected"),
    [
        ("PA", (0, 0), (1, 255), list(gen.RED)),
        ("La", (0, 0), (60, 255), [60, 60, 60]),
        ("RGBa", (0, 0, 0, 0), (*gen.RED, 255), list(gen.RED)),
    ],
)
def test_in_memory_alpha_modes(mode, transparent, opaque, expected):
    im = gen.two_pixel(mode, transparent, opaque)
    if mode == "PA":
        im.putpalette([0, 0, 0, *gen.RED])
    result = load_image(im)
    assert result.source_mode == mode and pixels(result) == [WHITE, expected]


@pytest.mark.parametrize("make", [gen.cmyk_tiff, gen.cmyk_jpeg])
def test_cmyk(make):
    result = load_image(make())
    assert result.source_mode == "CMYK"
    assert np.abs(np.asarray(result.image, int) - (255, 0, 0)).max() <= 3


def test_i16_mid_value_is_mid_grey():
    result = load_image(gen.i16_png(30000))
    assert result.source_mode == "I;16"
    assert set(map(tuple, pixels(result))) == {(117, 117, 117)}


def test_i16_full_range_is_scaled_not_clipped():
    result = load_image(gen.i16_ramp_tiff())
    assert pixels(result) == [[0, 0, 0], [128, 128, 128], WHITE]


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_i16_variants_in_memory(mode):
    im = Image.fromarray(np.array([[0, 30000, 65535]], np.uint16)).convert("I").convert(mode)
    assert im.mode == mode
    assert pixels(load_image(im)) == [[0, 0, 0], [117, 117, 117], WHITE]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 100, 255], [0, 100, 255]),  # 8-bit range: kept
        ([0, 30000, 65535], [0, 117, 255]),  # 16-bit range: scaled by 65535
        ([-5, 0, 5], [0, 128, 255]),  # otherwise min..max
        ([0, 1000, 70000], [0, 4, 255]),
    ],
)
def test_int32(values, expected):
    result = load_image(gen.int32_tiff(values))
    assert result.source_mode == "I"
    assert [p[0] for p in pixels(result)] == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # 0..1: scaled by 255
        ([0.0, 100.0, 255.0], [0, 100, 255]),  # 0..255: kept
        ([-1.0, 0.5, 2.0], [0, 128, 255]),  # otherwise min..max
        ([float("nan"), 0.0, 1.0], [0, 0, 255]),  # NaN ignored
    ],
)
def test_float(values, expected):
    result = load_image(gen.float_tiff(values))
    assert result.source_mode == "F"
    assert [p[0] for p in pixels(result)] == expected


def test_bilevel_and_grey():
    assert pixels(load_image(gen.bilevel_png())) == [[0, 0, 0], WHITE]
    assert pixels(load_image(gen.l_png())) == [[0, 0, 0], [200, 200, 200]]


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV", "RGBX"])
def test_other_modes_convert(mode):
    im = Image.new("RGB", (2, 2), gen.RED).convert(mode) if mode != "HSV" else Image.new("HSV", (2, 2), (0, 255, 255))
    result = load_image(im)
    assert result.image.mode == "RGB" and result.source_mode == mode


# --- orientation --------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation(fmt, orientation):
    expected = load_image(gen.encode(gen.upright(), fmt))
    result = load_image(gen.exif_oriented(orientation, fmt))
    assert result.source_size == result.image.size == (3, 2)  # as seen, not as stored (2x3)
    assert np.array_equal(np.asarray(result.image), np.asarray(expected.image))


def test_exif_orientation_jpeg_with_tolerance():
    big = gen.upright().resize((48, 32), Image.Resampling.NEAREST)
    stored = big.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    result = load_image(gen.encode(stored, "JPEG", exif=exif, quality=100, subsampling=0))
    assert result.image.size == (48, 32)
    assert np.abs(np.asarray(result.image, int) - np.asarray(big, int)).mean() < 4


# --- digest and inputs --------------------------------------------------------------------
def test_digest_is_sha256_of_bytes_and_stable():
    import hashlib

    data = gen.solid("PNG")
    assert load_image(data).digest == load_image(data).digest == hashlib.sha256(data).hexdigest()
    assert load_image(data).digest != load_image(gen.solid("PNG", color=gen.BLUE)).digest


def test_path_input(tmp_path):
    data = gen.solid("WEBP", lossless=True)
    path = tmp_path / "pic.webp"
    path.write_bytes(data)
    assert load_image(path).digest == load_image(str(path)).digest == load_image(data).digest


def test_pil_input():
    im = Image.new("RGB", (4, 3), gen.RED)
    result = load_image(im)
    assert result.image is not im and result.image.mode == "RGB"
    assert (result.source_mode, result.source_size, result.source_format) == ("RGB", (4, 3), "unknown")
    assert result.digest == load_image(im.copy()).digest
    assert result.digest != load_image(Image.new("RGB", (4, 3), gen.BLUE)).digest
    assert result.digest != load_image(Image.new("RGB", (3, 4), gen.RED)).digest
    opened = Image.open(BytesIO(gen.solid("GIF")))
    assert load_image(opened).source_format == "GIF"


def test_pil_palette_digest_includes_palette():
    a = Image.new("P", (2, 2), 1)
    b = a.copy()
    a.putpalette([0, 0, 0, *gen.RED])
    b.putpalette([0, 0, 0, *gen.BLUE])
    assert load_image(a).digest != load_image(b).digest


def test_pil_input_is_not_mutated():
    im = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    load_image(im)
    assert im.mode == "RGBA" and im.getpixel((0, 0)) == (0, 0, 0, 0)


@pytest.mark.parametrize("case", gen.hostile_cases(), ids=lambda c: c[0])
def test_hostile_cases_table(no_subprocess, case):
    _, filename, data, error_name = case
    refused(getattr(errors, error_name), data, filename=filename)
