"""Generate test images (and hostile non-images) in memory: every function returns bytes.

Shared by the image-loading unit tests and the server-level hostile-input tests.
Nothing here touches the network or the disk.
"""

from __future__ import annotations

import random
import struct
import zlib
from io import BytesIO

import numpy as np
from PIL import Image

RED = (220, 20, 30)
BLUE = (20, 40, 220)


def encode(image: Image.Image, fmt: str, **save_kw) -> bytes:
    """Encode a PIL image to bytes in ``fmt``."""
    buf = BytesIO()
    image.save(buf, fmt, **save_kw)
    return buf.getvalue()


def solid(fmt: str = "PNG", size: tuple[int, int] = (8, 8), color=RED, mode: str = "RGB", **save_kw) -> bytes:
    """A single-colour image in ``fmt`` (JPEG, PNG, WEBP, GIF, BMP, TIFF, PDF...)."""
    return encode(Image.new(mode, size, color), fmt, **save_kw)


def noisy(fmt: str = "JPEG", size: tuple[int, int] = (256, 256), seed: int = 0, **save_kw) -> bytes:
    """A random-noise RGB image (large encoded size, good for truncation)."""
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(arr), fmt, **save_kw)


# --- hostile / broken inputs --------------------------------------------------------------
def empty() -> bytes:
    return b""


def random_bytes(n: int = 4096, seed: int = 0) -> bytes:
    """Random bytes that start with no known magic number."""
    return b"\x00junk" + random.Random(seed).randbytes(n)


def truncated_jpeg(keep: float = 0.5) -> bytes:
    """A valid noisy JPEG cut after ``keep`` of its bytes."""
    data = noisy("JPEG", quality=95)
    return data[: int(len(data) * keep)]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny (~70-byte) valid 1x1 PNG whose IHDR is patched to declare width x height."""
    data = bytearray(solid("PNG", (1, 1)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # CRC over type + 13-byte body
    return bytes(data)


def animated_gif(frames: int = 1000, size: tuple[int, int] = (16, 16), first=RED) -> bytes:
    """A GIF of ``frames`` distinct frames; the first frame is ``first``."""
    images = [Image.new("RGB", size, first)]
    images += [Image.new("RGB", size, (i % 256, (i * 7) % 256, 255 - i % 256)) for i in range(1, frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=20, loop=0, optimize=False)


def svg() -> bytes:
    return b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def html() -> bytes:
    return b"<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)></body></html>"


def psd(size: tuple[int, int] = (4, 4)) -> bytes:
    """A minimal, valid 8-bit RGB Photoshop file (Pillow can read but not write PSD)."""
    w, h = size
    header = struct.pack(">4sH6sHIIHH", b"8BPS", 1, b"\0" * 6, 3, h, w, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, image resources, layer info: all empty
    return header + sections + struct.pack(">H", 0) + b"\x80" * (3 * w * h)  # raw, planar


def eps() -> bytes:
    """An EPS file that Pillow's EPS plugin would hand to Ghostscript."""
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
        b"newpath 0 0 moveto 10 0 lineto 10 10 lineto closepath fill\nshowpage\n%%EOF\n"
    )


def pdf() -> bytes:
    return solid("PDF", (8, 8))


def heic_like() -> bytes:
    """Just the leading ftyp box of a HEIC photo (enough to be recognised, not decodable)."""
    return struct.pack(">I4s4sI", 24, b"ftyp", b"heic", 0) + b"mif1heic" + b"\0" * 64


def tiff_named_png() -> bytes:
    """TIFF data, to be uploaded under a .png name."""
    return solid("TIFF")


# --- colour modes -------------------------------------------------------------------------
def two_pixel(mode: str, first, second) -> Image.Image:
    """A 2x1 image: pixel (0,0) = first, (1,0) = second."""
    im = Image.new(mode, (2, 1))
    im.putpixel((0, 0), first)
    im.putpixel((1, 0), second)
    return im


def p_transparent_png() -> bytes:
    """Palette PNG: pixel 0 is fully transparent (index 0), pixel 1 is opaque RED (index 1)."""
    im = Image.new("P", (2, 1))
    im.putpalette([0, 0, 0, *RED] + [0, 0, 0] * 254)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    return encode(im, "PNG", transparency=0)


def la_png() -> bytes:
    return encode(two_pixel("LA", (0, 0), (60, 255)), "PNG")


def rgba_png() -> bytes:
    return encode(two_pixel("RGBA", (0, 0, 0, 0), (*RED, 255)), "PNG")


def cmyk_tiff() -> bytes:
    return encode(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "TIFF")  # pure red in CMYK


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95)


def i16_png(value: int = 30000, size: tuple[int, int] = (4, 4)) -> bytes:
    return encode(Image.fromarray(np.full(size[::-1], value, np.uint16)), "PNG")


def i16_ramp_tiff() -> bytes:
    """16-bit TIFF with values 0 .. 65535."""
    return encode(Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)), "TIFF")


def int32_tiff(values) -> bytes:
    return encode(Image.fromarray(np.array([values], np.int32)), "TIFF")


def float_tiff(values) -> bytes:
    return encode(Image.fromarray(np.array([values], np.float32)), "TIFF")


def bilevel_png() -> bytes:
    return encode(two_pixel("1", 0, 1), "PNG")


def l_png() -> bytes:
    return encode(two_pixel("L", 0, 200), "PNG")


# --- orientation --------------------------------------------------------------------------
def upright() -> Image.Image:
    """An asymmetric 3x2 RGB image (every pixel different)."""
    arr = np.arange(3 * 2 * 3, dtype=np.uint8).reshape(2, 3, 3) * 12
    return Image.fromarray(arr)


def exif_oriented(orientation: int, fmt: str = "PNG") -> bytes:
    """``upright()`` stored rotated, with the EXIF orientation (6 or 8) that undoes it (lossless)."""
    stored = upright().transpose({6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, fmt, exif=exif)


def hostile_cases() -> list[tuple[str, str, bytes, str]]:
    """(case id, upload filename, bytes, expected ImageInputError subclass name) for hostile uploads."""
    return [
        ("zero-bytes", "empty.png", empty(), "EmptyImageError"),
        ("random-bytes-jpg", "photo.jpg", random_bytes(), "UnsupportedImageFormatError"),
        ("truncated-jpeg", "cut.jpg", truncated_jpeg(), "CorruptImageError"),
        ("png-bomb-30000", "bomb.png", png_declaring(30000, 30000), "ImageTooLargeError"),
        ("svg", "drawing.svg", svg(), "UnsupportedImageFormatError"),
        ("html", "page.html", html(), "UnsupportedImageFormatError"),
        ("psd", "layers.psd", psd(), "UnsupportedImageFormatError"),
        ("eps", "figure.eps", eps(), "UnsupportedImageFormatError"),
        ("pdf", "doc.pdf", pdf(), "UnsupportedImageFormatError"),
        ("heic", "IMG_0001.heic", heic_like(), "UnsupportedImageFormatError"),
        ("tiff-named-png", "scan.png", tiff_named_png(), "UnsupportedImageFormatError"),
    ]
