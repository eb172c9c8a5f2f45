"""Validate and normalise every user image before any model sees it.

``load_image`` accepts raw bytes, a file path or a PIL image and returns a
:class:`CleanImage`: a fully decoded, detached RGB image plus a digest of the
input. Every refusal is an :class:`~dashboard.errors.ImageInputError` subclass
whose message is meant for a person.

Safety rules: only the six formats in ``ALLOWED_FORMATS`` are ever tried (no
EPS/Ghostscript, PSD, PDF, SVG...); the pixel count is checked from the header
before anything is decoded, and so is the aspect ratio when ``max_aspect_ratio``
is given; only the first frame of an animation is decoded; no global Pillow
setting is changed.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import (
    CorruptImageError,
    EmptyImageError,
    ImageShapeError,
    ImageTooLargeError,
    UnsupportedImageFormatError,
)

__all__ = ["ALLOWED_FORMATS", "DEFAULT_MAX_PIXELS", "MAX_ASPECT_RATIO", "CleanImage", "load_image",
           "read_source", "source_digest"]

DEFAULT_MAX_PIXELS = 40_000_000
# Models resize the shorter side to a fixed length (torchvision: 256), so a 10000x1 image, a
# 100-byte PNG, would become 2,560,000x256 pixels: 2.5 GB and ~12 s of CPU per request.
MAX_ASPECT_RATIO = 50
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP", "TIFF": "TIFF"}
_ALLOWED_TEXT = "JPEG, PNG, WebP, GIF, BMP or TIFF"
_EXTENSIONS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".bmp": "BMP", ".dib": "BMP",
    ".tif": "TIFF", ".tiff": "TIFF",
}  # fmt: skip
_PREFERRED_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
_FAMILY = {"MPO": "JPEG"}  # Pillow reports multi-picture JPEGs (many camera photos) as MPO

# What Pillow raises on damaged data (UnidentifiedImageError, an OSError, is handled first).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError, KeyError, ZeroDivisionError)
_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)

_EMPTY_MSG = "No image was given: upload an image first."
_CORRUPT_MSG = (
    "The image file is damaged or incomplete, so it could not be decoded. "
    "Open it in an image editor, save or export it again, then upload the new file."
)


@dataclass(frozen=True)
class CleanImage:
    """A validated image, ready for any model."""

    image: Image.Image  # RGB, fully loaded, detached from the file
    digest: str  # sha256 hex of the raw input bytes (a result-cache key)
    source_format: str  # e.g. "PNG"; "unknown" for a PIL image without a format
    source_mode: str  # original PIL mode, e.g. "I;16"
    source_size: tuple[int, int]  # (width, height) as a person sees it (after EXIF orientation)


def load_image(
    source: bytes | str | os.PathLike | Image.Image,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    filename: str | None = None,
    max_aspect_ratio: float | None = None,
) -> CleanImage:
    """Check and decode one user image; return it as a detached RGB image.

    ``source`` is raw bytes, a file path (its name is used as ``filename`` when
    none is given) or a PIL image (the format checks are skipped, its digest is
    the sha256 of mode, size, palette and pixels). Only the first frame of an
    animation is used and the EXIF orientation is applied. See ``_to_rgb`` for
    how each colour mode becomes RGB.

    Raises EmptyImageError, UnsupportedImageFormatError (not an allowed format,
    or content that contradicts a known image extension), ImageTooLargeError
    (more than ``max_pixels`` pixels, checked before decoding), ImageShapeError
    (one side more than ``max_aspect_ratio`` times the other, checked before
    decoding; not checked when None) or CorruptImageError (the data cannot be
    decoded).
    """
    data, filename = read_source(source, filename)
    if isinstance(data, Image.Image):
        return _from_pil(data, max_pixels, max_aspect_ratio)
    digest = source_digest(data)
    try:
        im = Image.open(BytesIO(data), formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError:
        raise UnsupportedImageFormatError(_unsupported_message(data, filename)) from None
    except _BOMB:
        raise ImageTooLargeError(_bomb_message(data, max_pixels)) from None
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(_CORRUPT_MSG) from exc
    with im:
        fmt, mode = _FAMILY.get(im.format, im.format), im.mode
        _check_extension(filename, fmt)
        _check_pixels(im.size, max_pixels)
        _check_aspect(im.size, max_aspect_ratio)
        try:
            im.seek(0)  # first frame only; never iterate the frames
            im.load()
        except _BOMB:
            raise ImageTooLargeError(_bomb_message(data, max_pixels)) from None
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(_CORRUPT_MSG) from exc
        _exif_transpose(im, in_place=True)
        rgb = _to_rgb(im)
    return CleanImage(rgb, digest, fmt, mode, rgb.size)


# --- steps --------------------------------------------------------------------------------
def read_source(
    source: bytes | str | os.PathLike | Image.Image | None, filename: str | None = None
) -> tuple[bytes | Image.Image, str | None]:
    """The raw bytes (a PIL image passes through) and the file name, refusing empty input."""
    if isinstance(source, Image.Image):
        return source, filename
    if source is None or (isinstance(source, str) and not source.strip()):
        raise EmptyImageError(_EMPTY_MSG)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if filename is None:
            filename = path.name
        try:
            data = b"" if path.stat().st_size == 0 else path.read_bytes()
        except OSError:
            raise EmptyImageError(
                "The uploaded file could not be read (it may have been removed). Upload it again."
            ) from None
    else:
        raise TypeError(f"load_image() expects bytes, a path or a PIL image, not {type(source).__name__}")
    if not data:
        raise EmptyImageError("The file is empty (0 bytes): upload an image first." if filename else _EMPTY_MSG)
    return data, filename


def source_digest(data: bytes | Image.Image) -> str:
    """sha256 of the raw bytes; for a PIL image, of its mode, size, palette and pixels."""
    if not isinstance(data, Image.Image):
        return hashlib.sha256(data).hexdigest()
    image = data
    try:
        image.load()
        h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
        if image.mode in ("P", "PA") and image.palette is not None:
            h.update(image.palette.mode.encode() + image.palette.tobytes())
        h.update(repr(image.info.get("transparency")).encode())
        h.update(image.tobytes())
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(_CORRUPT_MSG) from exc
    return h.hexdigest()


def _from_pil(image: Image.Image, max_pixels: int, max_aspect_ratio: float | None) -> CleanImage:
    _check_pixels(image.size, max_pixels)
    _check_aspect(image.size, max_aspect_ratio)
    digest = source_digest(image)
    rgb = _to_rgb(_exif_transpose(image, in_place=False))
    return CleanImage(rgb, digest, image.format or "unknown", image.mode, rgb.size)


def _check_extension(filename: str | None, fmt: str) -> None:
    ext = os.path.splitext(filename or "")[1].lower()
    expected = _EXTENSIONS.get(ext)
    if expected and expected != fmt:
        name = _NAMES.get(fmt, fmt)
        raise UnsupportedImageFormatError(
            f"The file is named {ext} but contains {name} data, so it is refused. "
            f"Rename it to {_PREFERRED_EXT.get(fmt, '')} or convert it to a real "
            f"{_NAMES[expected]}, then upload it again."
        )


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse more than ``max_pixels``, or than Pillow's own bomb threshold (read, never changed)."""
    w, h = size
    if w <= 0 or h <= 0:
        raise CorruptImageError(f"The image has no pixels (its size is {w}×{h}). Upload another image.")
    max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    if w * h > max_pixels:
        raise ImageTooLargeError(_too_large_message(size, w * h, max_pixels))


def _check_aspect(size: tuple[int, int], max_ratio: float | None) -> None:
    w, h = size
    if max_ratio is not None and max(w, h) > max_ratio * min(w, h):
        raise ImageShapeError(
            f"The image is {w}×{h} pixels: one side is more than {max_ratio:g} times the other, too "
            "elongated to be resized for the models. Crop it closer to a square and upload it again."
        )


def _exif_transpose(im: Image.Image, *, in_place: bool) -> Image.Image:
    """Apply the EXIF orientation; unreadable EXIF data is ignored, not fatal."""
    try:
        if in_place:
            ImageOps.exif_transpose(im, in_place=True)
            return im
        return ImageOps.exif_transpose(im)
    except _DECODE_ERRORS:
        return im


def _to_rgb(im: Image.Image) -> Image.Image:
    """Return a new RGB image, whatever the mode of ``im``.

    * Transparency (alpha band, P/L/RGB ``transparency``, RGBA palette, LA, PA,
      La, RGBa): composited over white.
    * I;16 / I;16B / I;16L / I;16N: scaled by the nominal range, v * 255 / 65535.
    * I (32-bit int): kept when within 0..255; scaled by 65535 when within
      0..65535 (16-bit data widened to 32 bits); otherwise min..max -> 0..255.
    * F (float): kept when within 0..255 unless within 0..1, which is scaled by
      255; otherwise min..max -> 0..255 (NaN/inf ignored for the range).
    * Everything else (1, L, CMYK, YCbCr, LAB, HSV, RGBX...): ``convert("RGB")``.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        out = Image.fromarray(_to_uint8(np.asarray(im), mode)).convert("RGB")
    elif im.has_transparency_data:
        rgba = (im.convert("LA") if mode == "La" else im).convert("RGBA")
        out = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), rgba).convert("RGB")
    else:
        try:
            out = im.convert("RGB")
        except ValueError:
            raise UnsupportedImageFormatError(
                f"Images in the {mode} colour mode are not supported. Save it as an RGB image and upload it again."
            ) from None
    out.info = {}
    return out


def _to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    a = arr.astype(np.float32)
    if mode.startswith("I;16"):
        lo, hi, scale = 0.0, 65535.0, 255.0 / 65535.0
    else:
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if lo >= 0 and hi <= 1 and mode == "F":
            lo, scale = 0.0, 255.0
        elif lo >= 0 and hi <= 255:
            lo, scale = 0.0, 1.0
        elif lo >= 0 and hi <= 65535 and mode == "I":
            lo, scale = 0.0, 255.0 / 65535.0
        elif hi > lo:
            scale = 255.0 / (hi - lo)
        else:  # a constant image outside 0..255
            return np.full(a.shape, np.clip(lo, 0, 255), np.uint8)
        a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
    a = (a - lo) * scale
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


# --- messages -----------------------------------------------------------------------------
def _sniff(data: bytes) -> str | None:
    """Name a common non-image (or refused image) file type from its leading bytes."""
    head = data[:1024]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"8BPS"):
        return "a Photoshop (PSD)"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "a PostScript/EPS"
    if b"%PDF-" in head:
        return "a PDF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif", b"avis"):
        return "a HEIC/AVIF"
    if b"<svg" in text:
        return "an SVG"
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        return "an HTML"
    return None


def _unsupported_message(data: bytes, filename: str | None) -> str:
    kind = _sniff(data)
    if kind:
        return (
            f"This looks like {kind} file, which is not accepted: only {_ALLOWED_TEXT} images are. "
            "Export it as PNG or JPEG and upload that."
        )
    ext = os.path.splitext(filename or "")[1].lower()
    if ext in _EXTENSIONS:
        return (
            f"The file is named {ext} but is not a readable {_NAMES[_EXTENSIONS[ext]]} image: it may be "
            f"damaged or another kind of file renamed. Upload a {_ALLOWED_TEXT} image."
        )
    return f"This file is not a supported image. Upload a {_ALLOWED_TEXT} image."


def _human(n: int) -> str:
    return (f"{n / 1e6:,.1f}".removesuffix(".0") + " MP") if n >= 1_000_000 else f"{n:,} pixels"


def _too_large_message(size: tuple[int, int] | None, pixels: int | None, limit: int) -> str:
    got, lim = _human(pixels or 0), _human(limit)
    if got == lim:
        got, lim = f"{pixels:,} pixels", f"{limit:,} pixels"
    what = f"{size[0]}×{size[1]} = {got}" if size else "far more pixels than allowed"
    return f"The image is too large ({what}, the limit is {lim}). Scale it down and upload it again."


def _bomb_message(data: bytes, max_pixels: int) -> str:
    """Pillow's own bomb check fired inside ``Image.open``; quote the declared size."""
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    size = _declared_size(data)
    return _too_large_message(size, size[0] * size[1] if size else None, limit)


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Read only the header with the allowed format plugins (no decoding, no bomb check)."""
    Image.init()
    for fmt in ALLOWED_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        try:
            ok = factory is not None and (accept is None or accept(data[:16]))
            if ok and not isinstance(ok, str):  # a str is Pillow's "maybe" warning
                return factory(BytesIO(data), "").size
        except Exception:  # noqa: BLE001 - only used to word a message
            continue
    return None
