"""The upload check (issue 9, item 8) through the core and through gradio_client, and the theme."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from dashboard.errors import ImageTooLargeError, UnsupportedImageFormatError
from tests.conftest import app_error


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width×height, with a tiny (wrong) body: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\0\0\0\0IEND\xaeB`\x82")


def _jpeg(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, "JPEG")
    return buf.getvalue()


def test_check_image_describes_a_good_image(service):
    assert service.check_image(_jpeg(), "photo.jpg") == "JPEG, 64×48"


def test_check_image_refuses_text_and_bombs_without_a_model(service):
    with pytest.raises(UnsupportedImageFormatError):
        service.check_image(b"%PDF-1.4 not an image", "notes.pdf")
    with pytest.raises(ImageTooLargeError):
        service.check_image(_png_header_claiming(60_000, 60_000), "bomb.png")


def test_upload_check_over_the_api(client, upload):
    assert client.predict(upload("ok.jpg", _jpeg()), api_name="/check_image") == ()  # no outputs: nothing to say
    with app_error("not an image|not a supported|PDF"):
        client.predict(upload("notes.pdf", b"%PDF-1.4 not an image"), api_name="/check_image")
    with app_error("pixels|too large|larger"):
        client.predict(upload("bomb.png", _png_header_claiming(60_000, 60_000)), api_name="/check_image")


def test_theme_uses_no_google_fonts():
    from dashboard.tabs.page import theme

    t = theme()
    assert not any(isinstance(f, __import__("gradio").themes.GoogleFont) for f in [*t._font, *t._font_mono])
    assert "googleapis" not in t._get_theme_css()


def test_compare_tables_carry_their_metric_help(app_settings):
    """Item 12: a sentence per metric sits with the tables (JSD in bits, 0 and 1; top-k overlap as a
    share of k; the three stages)."""
    from dashboard.app import build_demo

    demo = build_demo(app_settings)
    texts = {getattr(b, "elem_id", None): getattr(b, "value", "") for b in demo.blocks.values()}
    agreement, latency = texts["compare-agreement-help"], texts["compare-latency-help"]
    assert "in bits: 0 means identical, 1 means" in agreement and "share of the k classes" in agreement
    assert all(stage in latency for stage in ("*preprocess*", "*forward*", "*postprocess*"))
