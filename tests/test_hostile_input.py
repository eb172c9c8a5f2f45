"""Hostile uploads through the running server: each gets a clear message, and nothing else breaks.

The core's own wording and pixel-level results are tested in test_images.py; here every file
travels the real way (gradio_client upload -> /classify_resnet -> RawImage -> core) and the
server process is watched while it handles them (it runs in this process).
"""

from __future__ import annotations

import resource
import subprocess
import threading
import time
from io import BytesIO
from pathlib import Path

import httpx
import psutil
import pytest
from gradio.utils import get_upload_folder
from gradio_client.exceptions import AppError
from PIL import EpsImagePlugin, Image, ImageFile

from conftest import app_error
from dashboard.images import ALLOWED_FORMATS, MAX_ASPECT_RATIO
from tests import imagegen as gen

HOSTILE = gen.hostile_cases()
# What a person reads for each kind of refusal (one pattern per core exception).
MESSAGES = {
    "EmptyImageError": r"The file is empty \(0 bytes\)",
    "UnsupportedImageFormatError": (r"is not accepted: only JPEG, PNG|not a readable JPEG"
                                    r"|contains TIFF data, so it is refused"),
    "CorruptImageError": "damaged or incomplete",
    "ImageTooLargeError": r"too large \(30000×30000",
}
MODEL = "squeezenet1_1"  # the fastest built-in model; its checkpoint is in the session caches
MB = 2**20


def classify(client, image, top_k: int = 3):
    """(label, latency table, model card) from /classify_resnet."""
    return client.predict(image, MODEL, top_k, api_name="/classify_resnet")


def confidences(label: dict) -> list[tuple[str, float]]:
    return [(c["label"], c["confidence"]) for c in label["confidences"]]


def same_prediction(a: dict, b: dict) -> bool:
    """Same top-k labels in the same order with the same probabilities (float noise aside)."""
    (la, pa), (lb, pb) = zip(*confidences(a)), zip(*confidences(b))
    return la == lb and pa == pytest.approx(pb, rel=1e-5)


class PeakRss:
    """Samples this process's resident memory every millisecond while the block runs."""

    def __enter__(self) -> PeakRss:
        self._proc, self._stop = psutil.Process(), threading.Event()
        self.before = self.peak = self._proc.memory_info().rss
        self.maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        # ru_maxrss also catches a spike shorter than the sampling period
        self.maxrss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.maxrss_before
        self.growth = self.peak - self.before


# --- refused, with a clear message -------------------------------------------------------
@pytest.mark.parametrize("case", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_upload_gets_a_clear_message_and_the_server_carries_on(client, upload, photo, case):
    _, name, data, error = case
    with app_error(MESSAGES[error]):
        classify(client, upload(name, data))
    label, _, _ = classify(client, upload("after.jpg", photo.read_bytes()))
    assert len(label["confidences"]) == 3


def test_bomb_is_refused_fast_without_a_memory_spike(client, upload):
    bomb = upload("bomb.png", gen.png_declaring(30000, 30000))  # 70 bytes; 2.7 GB once decoded
    with PeakRss() as rss:
        start = time.perf_counter()
        with app_error(r"too large \(30000×30000 = 900 MP, the limit is 40 MP\)"):
            classify(client, bomb)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"the refusal took {elapsed:.2f} s"
    assert rss.growth < 50 * MB and rss.maxrss_growth < 50 * MB, (rss.growth / MB, rss.maxrss_growth / MB)


def test_pixel_cap_boundary_through_the_server(launch_app, upload):
    app = launch_app(max_pixels=10_000)
    label, _, _ = classify(app.client, upload("under.png", gen.solid("PNG", (100, 100))))
    assert len(label["confidences"]) == 3
    with app_error(r"too large \(101×100 = 10,100 pixels, the limit is 10,000 pixels\)"):
        classify(app.client, upload("over.png", gen.solid("PNG", (101, 100))))


@pytest.mark.parametrize("size", [(1, 1), (MAX_ASPECT_RATIO, 1), (1, MAX_ASPECT_RATIO)])
def test_tiny_and_elongated_images_are_classified(client, upload, size):
    label, _, _ = classify(client, upload("shape.png", gen.solid("PNG", size)))
    assert len(label["confidences"]) == 3


@pytest.mark.parametrize("size", [(10000, 1), (1, 10000)])
def test_needle_images_are_refused_before_any_resize(client, upload, size):
    # A model resizes the shorter side to 256: 10000x1 would become 2,560,000x256 pixels.
    with PeakRss() as rss, app_error(rf"{size[0]}×{size[1]} pixels: one side is more than 50 times"):
        classify(client, upload("needle.png", gen.solid("PNG", size)))
    assert rss.growth < 50 * MB and rss.maxrss_growth < 50 * MB


def test_1000_frame_gif_uses_its_first_frame_in_bounded_time(client, upload):
    gif = upload("anim.gif", gen.animated_gif(1000, size=(16, 16), first=gen.RED))
    start = time.perf_counter()
    label, _, _ = classify(client, gif)
    assert time.perf_counter() - start < 2.0  # frames are never iterated
    first_frame, _, _ = classify(client, upload("first.png", gen.solid("PNG", (16, 16), gen.RED)))
    assert same_prediction(label, first_frame)


# --- accepted: every colour mode becomes a correct RGB input ------------------------------
MODES = {
    "P+transparency": ("p.png", gen.p_transparent_png),
    "LA": ("la.png", gen.la_png),
    "RGBA": ("rgba.png", gen.rgba_png),
    "CMYK-TIFF": ("cmyk.tif", gen.cmyk_tiff),
    "CMYK-JPEG": ("cmyk.jpg", gen.cmyk_jpeg),
    "I;16": ("i16.png", gen.i16_png),
    "I": ("i32.tif", lambda: gen.int32_tiff([0, 1000, 70000])),
    "F": ("float.tif", lambda: gen.float_tiff([0.0, 0.5, 1.0])),
    "1": ("bilevel.png", gen.bilevel_png),
}


@pytest.mark.parametrize("mode", MODES)
def test_every_colour_mode_is_classified(client, upload, mode):
    name, make = MODES[mode]
    label, _, _ = classify(client, upload(name, make()))
    assert len(label["confidences"]) == 3


def test_16_bit_grey_is_scaled_not_saturated(client, upload):
    grey16, _, _ = classify(client, upload("grey16.png", gen.i16_png(30000, (4, 4))))
    grey8, _, _ = classify(client, upload("grey8.png", gen.solid("PNG", (4, 4), 117, mode="L")))  # 30000/257
    white, _, _ = classify(client, upload("white.png", gen.solid("PNG", (4, 4), 255, mode="L")))
    assert same_prediction(grey16, grey8) and not same_prediction(grey16, white)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_gives_the_upright_prediction(client, upload, orientation):
    upright, _, _ = classify(client, upload("upright.png", gen.encode(gen.upright(), "PNG")))
    oriented, _, _ = classify(client, upload("oriented.png", gen.exif_oriented(orientation)))
    turn = Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270
    stored = gen.upright().transpose(turn)
    ignored, _, _ = classify(client, upload("stored.png", gen.encode(stored, "PNG")))  # the tag ignored
    assert same_prediction(oriented, upright) and not same_prediction(ignored, upright)


# --- only our core parses user bytes ------------------------------------------------------
def test_the_handler_gets_the_uploaded_file_untouched(client, running_app, upload, monkeypatch):
    seen = []
    real = running_app.service.compare_models

    def spy(source, *args, **kwargs):
        seen.append(Path(source).read_bytes())
        return real(source, *args, **kwargs)

    monkeypatch.setattr(running_app.service, "compare_models", spy)
    data = gen.rgba_png()  # a plain gr.Image (image_mode="RGB") would decode and re-encode this
    classify(client, upload("alpha.png", data))
    assert seen == [data]


def test_only_allowlisted_pillow_plugins_parse_uploads_and_no_process_is_started(
    client, upload, photo, monkeypatch
):
    parsed, started = [], []
    real_init, real_popen = ImageFile.ImageFile.__init__, subprocess.Popen

    def init(self, *args, **kwargs):  # every Pillow plugin parses a file in ImageFile.__init__
        parsed.append(self.format)
        real_init(self, *args, **kwargs)

    def popen(args, *rest, **kwargs):
        started.append(args)
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "__init__", init)
    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: started.append(("gs", a)))

    Image.open(BytesIO(gen.psd()))  # Pillow asked directly does parse a PSD, and the spy sees it
    assert "PSD" in parsed
    parsed.clear()

    for _, name, data, _ in HOSTILE:
        with pytest.raises(AppError):
            classify(client, upload(name, data))
    classify(client, upload("ok.jpg", photo.read_bytes()))
    assert parsed and set(parsed) <= set(ALLOWED_FORMATS)
    assert started == []


# --- the upload cap and the file name ----------------------------------------------------
def test_a_file_over_the_upload_cap_is_refused(client, app_url, app_settings, upload):
    cap = int(app_settings.max_file_size_mb * MB)
    name = f"over-cap-{time.time_ns()}.png"
    data = gen.solid("PNG", (8, 8)) + bytes(cap)  # a valid PNG, padded past the cap
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {cap} bytes"):
        classify(client, upload(name, data))  # gradio_client checks the cap from the app's config
    answer = httpx.post(app_url + "gradio_api/upload", files={"files": (name, data)}, timeout=30)
    assert answer.status_code == 413 and "maximum allowed size" in answer.text  # the server refuses
    assert not list(Path(get_upload_folder()).glob(f"*/{name}"))  # and keeps nothing


def test_a_file_name_with_html_is_never_echoed(client, upload):
    name = "<img src=x onerror=alert(1)>"
    label, times, card = classify(client, upload(f"{name}.png", gen.noisy("PNG", (32, 32))))
    assert len(label["confidences"]) == 3
    assert "<img" not in repr((label, times, card))
    with pytest.raises(AppError) as refused:
        classify(client, upload(f"{name}.jpg", gen.random_bytes()))
    assert "not a readable JPEG" in str(refused.value) and "<img" not in str(refused.value)
