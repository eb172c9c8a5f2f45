"""The server's hardening: nothing outside the app is served, free-form model ids are fenced in,
errors are curated, and the dependencies are past their known advisories."""

from __future__ import annotations

import http.client
import importlib.metadata
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from gradio.utils import get_upload_folder
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import HF_HOME, TORCH_HOME, app_error, hub_config
from dashboard import random_weights
from dashboard.app import DELETE_CACHE, launch_kwargs
from tests import imagegen as gen

ROOT = Path(__file__).resolve().parent.parent
VIT_PRESET = "google/vit-base-patch16-224"


def raw_get(app_url: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (no client-side normalisation of ../ or %2e)."""
    conn = http.client.HTTPConnection(urlsplit(app_url).hostname, urlsplit(app_url).port, timeout=30)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


# --- files outside the app ----------------------------------------------------------------
def _probes() -> list[str]:
    app_py, checkpoint = ROOT / "dashboard" / "app.py", TORCH_HOME / "hub" / "checkpoints"
    uploads = get_upload_folder()
    return [
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=/proc/self/environ",
        "/gradio_api/file=../../../../etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/gradio_api/file=%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/gradio_api/file=%2Fetc%2Fpasswd",
        "/gradio_api/file=%252e%252e%252f%252e%252e%252fetc%252fpasswd",  # double-encoded
        f"/gradio_api/file={uploads}/../../etc/passwd",
        f"/gradio_api/file={uploads}/x/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/gradio_api/file/etc/passwd",
        "/file=/etc/passwd",  # the legacy routes
        "/file=../../etc/passwd",
        f"/file={app_py}",
        f"/gradio_api/file={app_py}",  # the app's own source, absolute and relative
        "/gradio_api/file=dashboard/app.py",
        f"/gradio_api/file={checkpoint}",  # the model caches (a directory, then a file)
        f"/gradio_api/file={checkpoint}/resnet18-f37072fd.pth",
        f"/gradio_api/file={HF_HOME}/hub",
        "/static/../../../etc/passwd",
        "/gradio_api/file=http://169.254.169.254/latest/meta-data/",  # URL forms (SSRF)
        "/gradio_api/file=http://127.0.0.1:22/",
        "/gradio_api/file=file:///etc/passwd",
    ]


@pytest.mark.parametrize("path", _probes())
def test_files_outside_the_app_are_never_served(app_url, path):
    status, body = raw_get(app_url, path)
    assert status in (403, 404), (status, body[:200])
    assert b"root:" not in body and b"import gradio" not in body


def test_an_uploaded_file_is_served_back(app_url, photo):
    """The probes above fail for the right reason: the file route itself works."""
    files = {"files": ("cat.jpg", photo.read_bytes())}
    answer = httpx.post(app_url + "gradio_api/upload", files=files, timeout=30)
    (path,) = answer.json()
    status, body = raw_get(app_url, f"/gradio_api/file={path}")
    assert status == 200 and body == photo.read_bytes()


# --- free-form Hub ids --------------------------------------------------------------------
def test_remote_code_is_never_trusted_through_the_app(client, upload, monkeypatch):
    import transformers

    flags = []
    for auto in (transformers.AutoConfig, transformers.AutoImageProcessor,
                 transformers.AutoModelForImageClassification):
        real = auto.from_pretrained

        def spy(*args, _real=real, **kwargs):
            flags.append(kwargs.get("trust_remote_code"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", spy)
    random_weights.write_hub_checkpoint("acme/server-tiny-vit", HF_HOME, tiny=True)
    hub_config("acme/server-custom-code", {"model_type": "acme_custom",
                                           "auto_map": {"AutoConfig": "configuration_acme.AcmeConfig"}})
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))

    label, _, _ = client.predict(image, VIT_PRESET, "acme/server-tiny-vit", 3, api_name="/classify_vit")
    assert len(label["confidences"]) == 3
    with app_error("needs to run its own Python code from the Hub, which this dashboard never does"):
        client.predict(image, VIT_PRESET, "acme/server-custom-code", 3, api_name="/classify_vit")
    assert flags and True not in flags


def test_custom_ids_can_be_turned_off(launch_app, upload):
    app = launch_app(allow_custom_models=False)
    config = httpx.get(app.url + "config", timeout=30).json()
    (textbox,) = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "vit-custom"]
    assert textbox["props"]["visible"] is False
    image = upload("noise.png", gen.noisy("PNG", (32, 32)))
    with app_error("Custom model ids are turned off on this deployment, so 'acme/anything' cannot be loaded"):
        app.client.predict(image, VIT_PRESET, "acme/anything", 3, api_name="/classify_vit")
    label, _, _ = app.client.predict(image, "facebook/deit-tiny-patch16-224", "", 3, api_name="/classify_vit")
    assert len(label["confidences"]) == 3  # the presets still work


def test_models_over_the_size_cap_are_refused_with_why(client, app_settings, upload):
    assert app_settings.max_model_params == 400_000_000  # the default
    hub_config("acme/server-huge-vit", {  # ViT-H/14: 632M parameters, counted without any weights
        "model_type": "vit", "architectures": ["ViTForImageClassification"], "hidden_size": 1280,
        "num_hidden_layers": 32, "num_attention_heads": 16, "intermediate_size": 5120,
        "image_size": 224, "patch_size": 14, "num_labels": 1000,
    })
    why = "'acme/server-huge-vit' has 632M parameters; this deployment loads models of at most 400M"
    with app_error(why):
        client.predict(upload("noise.png", gen.noisy("PNG", (32, 32))), VIT_PRESET, "acme/server-huge-vit", 3,
                       api_name="/classify_vit")


def test_a_model_id_with_html_is_refused_inert(client, upload):
    with app_error("Unknown model") as refused:
        client.predict(upload("noise.png", gen.noisy("PNG", (32, 32))), VIT_PRESET,
                       "<img src=x onerror=alert(1)>", 3, api_name="/classify_vit")
    assert "&lt;img src=x onerror=alert(1)&gt;" in str(refused.value) and "<img" not in str(refused.value)


# --- dependencies -------------------------------------------------------------------------
# First releases without the advisories we know of; requirements.txt must not admit older ones.
ADVISORY_FLOORS = {
    "gradio": "6.31.0",  # file= open redirect / SSRF (fixed after 6.17.3), FileExplorer traversal (6.16.0)
    "pillow": "12.3.0",  # PSD out-of-bounds write (12.1.1), FITS/PDF DoS (12.2.0), PYSEC-2026-2253..2257
}


def _requirements() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    reqs = [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]
    return {r.name.lower(): r for r in reqs}


@pytest.mark.parametrize("package", ADVISORY_FLOORS)
def test_dependencies_are_pinned_past_known_advisories(package):
    requirement = _requirements()[package]
    minimum = min(Version(s.version) for s in requirement.specifier if s.operator == ">=")
    assert minimum >= Version(ADVISORY_FLOORS[package]), f"raise the floor in requirements.txt: {requirement}"
    installed = importlib.metadata.version(package)
    assert requirement.specifier.contains(installed), f"{package} {installed} does not satisfy {requirement}"


# --- launch options and curated errors ----------------------------------------------------
def test_launch_options_are_hardened(running_app, app_settings):
    options = launch_kwargs(app_settings)
    assert options["show_error"] is False and options["share"] is False and options["allowed_paths"] == []
    assert running_app.show_error is False and running_app.share is False and running_app.share_url is None
    assert running_app.allowed_paths == [] and running_app.delete_cache == DELETE_CACHE
    assert running_app.max_file_size == 5 * 2**20
    assert "GRADIO_ALLOWED_PATHS" not in os.environ and "GRADIO_SHARE" not in os.environ


def test_an_unexpected_error_shows_the_curated_message_only(client, running_app, upload, photo, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("/srv/secret/internal-state.json")

    monkeypatch.setattr(running_app.service, "compare_models", broken)
    with app_error("Something went wrong on the server while handling this request") as err:
        client.predict(upload("cat.jpg", photo.read_bytes()), "squeezenet1_1", 3, api_name="/classify_resnet")
    assert "secret" not in str(err.value) and "KeyError" not in str(err.value)
    monkeypatch.undo()
    label, _, _ = client.predict(upload("cat.jpg", photo.read_bytes()), "squeezenet1_1", 3,
                                 api_name="/classify_resnet")
    assert len(label["confidences"]) == 3


def test_errors_outside_our_handlers_show_no_details(client, running_app, upload, photo, monkeypatch):
    """show_error=False: a failure inside gradio itself reaches the client without its text.
    (A bad top-k no longer is such a failure: issue 8 gives it a clear message.)"""
    (label,) = [b for b in running_app.blocks.values() if getattr(b, "elem_id", None) == "resnet-label"]

    def broken(value):
        raise TypeError("/srv/secret/preprocess-state")

    monkeypatch.setattr(label, "postprocess", broken)
    with app_error("has not enabled verbose error reporting") as err:
        client.predict(upload("cat.jpg", photo.read_bytes()), "squeezenet1_1", 3, api_name="/classify_resnet")
    assert "TypeError" not in str(err.value) and "secret" not in str(err.value)
