"""Warm start (issue 9, items 7 and 19): background preload after serving, honest loading
messages, and `python app.py` logging like `python -m dashboard`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from dashboard.loading import BackgroundPreload, load_notice
from dashboard.models.cache import ModelCache
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


class GatedLoader:
    """A loader whose loads finish only when the test says so, recording what was asked."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, key: str):
        self.started.set()
        assert self.release.wait(10)
        return SimpleNamespace(info=SimpleNamespace(weight_bytes=1, key=key))


@pytest.fixture
def gated_service():
    service = ClassificationService(resolve_settings(device="cpu"))
    loader = GatedLoader()
    service.cache = ModelCache(loader, 2**30)
    return service, loader


def test_notice_before_anything_was_timed_says_so(gated_service):
    service, _ = gated_service
    notice = load_notice(service, ["resnet18"])
    assert notice.startswith("Loading ResNet-18 (first use;") and "not timed here yet" in notice
    assert "a few seconds" not in notice


def test_request_during_a_background_load_says_it_waits_for_it(gated_service):
    service, loader = gated_service
    preload = BackgroundPreload(service, ["google/vit-base-patch16-224"]).start()
    assert loader.started.wait(5)
    notice = load_notice(service, ["resnet18", "google/vit-base-patch16-224"])
    assert "Loading ResNet-18 (first use" in notice
    assert "Waiting for ViT-B/16, which is already loading in the background" in notice
    loader.release.set()
    assert preload.done.wait(10) and not preload.errors
    assert service.cache.is_loaded("google/vit-base-patch16-224")
    # loaded now: nothing to announce for it; another model quotes the time measured here
    assert load_notice(service, ["google/vit-base-patch16-224"]) is None
    measured = service.cache.load_ms["google/vit-base-patch16-224"] / 1e3
    assert f"other models took {measured:.1f} s on this server" in load_notice(service, ["resnet18"])
    # evicted since: its own measured time
    with service.cache._lock:  # as an eviction does: the model goes, its measured time stays
        service.cache._models.clear()
    assert f"Loading ViT-B/16 (first use; about {measured:.1f} s on this server)" in load_notice(
        service, ["google/vit-base-patch16-224"])


def test_failed_background_load_is_recorded_not_raised(gated_service):
    service, _ = gated_service

    def broken(key):
        raise OSError("disk on fire")

    service.cache = ModelCache(broken, 2**30)
    preload = BackgroundPreload(service, ["resnet18", "no-such-model"]).start()
    assert preload.done.wait(10)
    assert set(preload.errors) == {"resnet18", "no-such-model"}
    assert "Unknown model" in preload.errors["no-such-model"]


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_app_py_serves_first_then_loads_the_defaults_and_logs_it(model_caches, tmp_path, photo):
    """The Space entry: the page answers, then both defaults load in the background, logged
    like `python -m dashboard`; a request afterwards finds the model cached."""
    port = free_port()
    log_path = tmp_path / "app.log"
    env = {**os.environ, "DASHBOARD_BACKGROUND_PRELOAD": "true", "DASHBOARD_DEVICE": "cpu",
           "DASHBOARD_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        def serving() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        assert _wait_for(serving, 120), log_path.read_text()
        text = lambda: log_path.read_text(errors="replace")  # noqa: E731
        assert _wait_for(lambda: "background preload: google/vit-base-patch16-224" in text(), 180), text()
        out = text()
        assert "INFO dashboard.models.cache: loaded resnet18 in" in out
        assert "INFO dashboard.models.cache: loaded google/vit-base-patch16-224 in" in out
        # the background load started only once the server was up
        assert out.index("Running on local URL") < out.index("background preload of")
        from gradio_client import Client, handle_file

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        _, times, card = client.predict(handle_file(str(photo)), "resnet18", 3, api_name="/classify_resnet")
        assert dict(zip(times["headers"], times["data"][0]))["load"] == "cached" and "model cached" in card
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def test_background_preload_setting(monkeypatch):
    assert resolve_settings(env={}).background_preload is True
    assert resolve_settings(env={"DASHBOARD_BACKGROUND_PRELOAD": "false"}).background_preload is False
    with pytest.raises(ValueError, match="expected true or false"):
        resolve_settings(env={"DASHBOARD_BACKGROUND_PRELOAD": "maybe"})
