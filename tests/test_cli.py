"""The command line, run as a user would: a subprocess with the offline caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300,
    )


def test_classify_json_with_two_models(model_caches, photo):
    out = run("classify", str(photo), "--model", "resnet18", "--model", "facebook/deit-tiny-patch16-224",
              "--top-k", "4", "--json", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert [r["model"] for r in records] == ["resnet18", "facebook/deit-tiny-patch16-224"]
    for r in records:
        assert len(r["top"]) == 4 and r["device"] == "cpu"
        assert set(r["times_ms"]) == {"preprocess", "forward", "postprocess", "total"}
        assert r["times_ms"]["forward"] > 0 and r["load"].endswith("ms")


def test_classify_text_output(model_caches, photo):
    out = run("classify", str(photo), "--model", "squeezenet1_1")
    assert out.returncode == 0, out.stderr
    assert "squeezenet1_1 on cpu" in out.stdout and "forward" in out.stdout
    assert len([line for line in out.stdout.splitlines() if line.startswith("  ")]) == 3


@pytest.mark.parametrize("args, message", [
    (["classify", "{bad}", "--model", "squeezenet1_1"], "not a readable JPEG"),
    (["classify", "{photo}", "--model", "resnet19"], "Unknown model 'resnet19'"),
    (["classify", "{missing}", "--model", "squeezenet1_1"], "could not be read"),
])
def test_bad_input_exits_nonzero_with_a_clear_message(args, message, tmp_path, model_caches, photo):
    bad = tmp_path / "noise.jpg"
    bad.write_bytes(os.urandom(2048))
    paths = {"bad": bad, "photo": photo, "missing": tmp_path / "missing.png"}
    out = run(*[a.format(**paths) for a in args])
    assert out.returncode == 1
    assert message in out.stderr and "Traceback" not in out.stderr


def test_download_offline_fails_clearly(model_caches):
    out = run("download", "google/vit-large-patch16-224-in21k")
    assert out.returncode == 1
    assert "HF_HUB_OFFLINE" in out.stderr and "Traceback" not in out.stderr


def test_download_of_cached_models_succeeds(model_caches):
    out = run("download", "resnet18", "google/vit-base-patch16-224")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok:", "resnet18", "ok:", "google/vit-base-patch16-224"]


def test_download_without_network_for_torchvision(tmp_path):
    # an empty TORCH_HOME and an unreachable download host: a message, no traceback
    out = run("download", "squeezenet1_0", env={"TORCH_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9",
                                                "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert out.returncode == 1
    assert "python -m dashboard download squeezenet1_0" in out.stderr and "Traceback" not in out.stderr


def test_importing_the_package_loads_no_framework():
    code = ("import sys, dashboard, dashboard.service, dashboard.__main__, dashboard.models.registry;"
            "heavy = [m for m in ('torch', 'torchvision', 'transformers', 'gradio') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
