"""Test set-up: offline model caches with random-init checkpoints in their real layouts.

The environment is set before anything imports torch.hub or huggingface_hub (which read
HF_HOME once, at import), so every test runs the real loading code against these caches and
never touches the network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="dashboard-test-caches-"))
TORCH_HOME = _ROOT / "torch"
HF_HOME = _ROOT / "hf"

# Built-in models written once per session; the others are written by the tests that need them.
FULL_SIZE_TORCHVISION = ("resnet18", "squeezenet1_1")
HUB_FULL_SIZE = ("google/vit-base-patch16-224",)
HUB_TINY = ("google/vit-large-patch16-224", "facebook/deit-tiny-patch16-224",
            "facebook/deit-small-patch16-224", "facebook/deit-base-patch16-224")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update({
        "TORCH_HOME": str(TORCH_HOME),
        "HF_HOME": str(HF_HOME),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TOKENIZERS_PARALLELISM": "false",
        "DASHBOARD_BACKGROUND_PRELOAD": "false",  # servers started by tests load only what they use
        "DASHBOARD_AUTO_RUN": "false",  # tests click what they run; tests of auto-run turn it on
        "DASHBOARD_ONNX_CACHE_DIR": str(_ROOT / "onnx"),  # exported .onnx files (issue 12)
    })
    for name in ("DASHBOARD_DEVICE", "DASHBOARD_ALLOW_CUSTOM_MODELS", "DASHBOARD_MEMORY_BUDGET_MB"):
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_ROOT, ignore_errors=True)


_written: set[str] = set()
_write_lock = threading.Lock()


def ensure_checkpoint(key: str, *, tiny: bool = True) -> None:
    """Write the random-init checkpoint of a built-in model into the session caches, once."""
    from dashboard import random_weights
    from dashboard.models.registry import get_spec

    with _write_lock:
        if key in _written:
            return
        if get_spec(key).backend == "torchvision":
            random_weights.write_torchvision_checkpoint(key, TORCH_HOME)
        else:
            random_weights.write_hub_checkpoint(key, HF_HOME, tiny=tiny)
        _written.add(key)


@pytest.fixture(scope="session")
def model_caches() -> Path:
    """The session's TORCH_HOME/HF_HOME with the default models (full size) and tiny presets."""
    for key in FULL_SIZE_TORCHVISION + HUB_FULL_SIZE:
        ensure_checkpoint(key, tiny=False)
    for key in HUB_TINY:
        ensure_checkpoint(key, tiny=True)
    return _ROOT


@pytest.fixture(scope="session")
def service(model_caches):
    """One shared service over the session caches (CPU, like CI)."""
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    return ClassificationService(resolve_settings(device="cpu"))


@pytest.fixture(scope="session")
def photo() -> Path:
    """A real photo from the examples folder."""
    return Path(__file__).resolve().parent.parent / "assets" / "examples" / "cat.jpg"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def served_app(model_caches):
    """The dashboard served in-process on a free port, over the offline test caches."""
    with serve_app() as app:
        yield app


@pytest.fixture(scope="session")
def app_settings(served_app):
    return served_app.settings


@pytest.fixture(scope="session")
def running_app(served_app):
    return served_app.demo


@pytest.fixture(scope="session")
def app_url(running_app, app_settings) -> str:
    return f"http://127.0.0.1:{app_settings.port}/"


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


# --- Apps with their own settings; helpers for the hostile-input, fault and load tests -------
class ServedApp:
    """A dashboard served in-process: its Blocks, URL, settings and a gradio_client Client."""

    def __init__(self, demo, settings) -> None:
        from gradio_client import Client

        self.demo, self.settings = demo, settings
        self.url = f"http://127.0.0.1:{settings.port}/"
        # download_files=False: file outputs (the compare CSV) come back as FileData dicts, and
        # the client writes nothing into the temporary folders that the tests count.
        self.client = Client(self.url, verbose=False, download_files=False)


@contextlib.contextmanager
def serve_app(delete_cache: tuple[int, int] | None = None, **overrides):
    """Build and launch a dashboard whose settings are the session app's plus ``overrides``."""
    from dashboard.app import DELETE_CACHE, build_demo, launch_kwargs
    from dashboard.settings import resolve_settings

    settings = resolve_settings(**{"device": "cpu", "port": free_port(), "max_file_size_mb": 5,
                                   "queue_max_size": 64, **overrides})
    demo = build_demo(settings, delete_cache=delete_cache or DELETE_CACHE)
    demo.launch(**launch_kwargs(settings), prevent_thread_lock=True, quiet=True)
    try:
        yield ServedApp(demo, settings)
    finally:
        demo.close()


@pytest.fixture
def launch_app(model_caches):
    """``launch_app(**settings)`` -> ServedApp; every app launched is closed after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(serve_app(**overrides))


@pytest.fixture
def upload(tmp_path):
    """``upload(name, data)``: the bytes written under that file name, ready for gradio_client."""
    from gradio_client import handle_file

    def make(name: str, data: bytes):
        path = tmp_path / "uploads" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return handle_file(str(path))

    return make


def app_error(match: str):
    """Expect the app to answer with a curated message (gradio_client's AppError) matching ``match``."""
    from gradio_client.exceptions import AppError

    return pytest.raises(AppError, match=match)


def hub_config(repo_id: str, config: dict) -> None:
    """A Hub-cache entry in the session HF_HOME holding only config.json: enough for a model id
    to be refused (not a classifier, remote code, too large) before any weights are needed."""
    import json

    from dashboard import random_weights

    folder = HF_HOME / "staging" / repo_id.replace("/", "--")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    random_weights.install_snapshot(repo_id, HF_HOME, folder)
