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
        assert r["times_ms"]["forward"] > 0
        assert all(isinstance(v, float) for v in r["times_ms"].values())  # numbers, not "5 ms"
        assert r["model_cached"] is (r["load_ms"] is None)
        assert r["load_ms"] is None or isinstance(r["load_ms"], float)
        assert r["expected"].startswith("tabby cat") and isinstance(r["top1_right"], bool)


def test_classify_text_output(model_caches, photo):
    out = run("classify", str(photo), "--model", "squeezenet1_1")
    assert out.returncode == 0, out.stderr
    assert "squeezenet1_1 on cpu" in out.stdout and "forward" in out.stdout
    lines = [line for line in out.stdout.splitlines() if line.startswith("  ")]
    assert len(lines) == 3 + 1  # top-3, then the example's expected class (cat.jpg: a tabby)
    assert lines[-1].startswith("  expected: tabby cat") and lines[-1].endswith(("right", "wrong"))


@pytest.mark.parametrize("args, message", [
    (["classify", "{bad}", "--model", "squeezenet1_1"], "not a readable JPEG"),
    (["classify", "{photo}", "--model", "resnet19"], "Unknown model 'resnet19'"),
    (["classify", "{missing}", "--model", "squeezenet1_1"], "missing.png: no such file"),
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
    assert "HF_HUB_OFFLINE is set" in out.stderr and "Traceback" not in out.stderr
    assert "python -m dashboard download" not in out.stderr


def test_download_of_cached_models_succeeds(model_caches):
    out = run("download", "resnet18", "google/vit-base-patch16-224")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok:", "resnet18", "ok:", "google/vit-base-patch16-224"]


def test_download_without_network_for_torchvision(tmp_path):
    # an empty TORCH_HOME and an unreachable download host: a message, no traceback
    out = run("download", "squeezenet1_0", env={"TORCH_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9",
                                                "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert out.returncode == 1
    assert "cannot download squeezenet1_0: the network is unreachable" in out.stderr
    assert "Connection refused" in out.stderr and "Traceback" not in out.stderr
    assert "python -m dashboard download" not in out.stderr  # not the command that just failed


def test_importing_the_package_loads_no_framework():
    code = ("import sys, dashboard, dashboard.service, dashboard.__main__, dashboard.models.registry;"
            "heavy = [m for m in ('torch', 'torchvision', 'transformers', 'gradio') if m in sys.modules];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


# --- issue 9, item 17 -----------------------------------------------------------------------
UNREACHABLE = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
               "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


@pytest.mark.parametrize("value", ["0", "11", "-3", "two"])
def test_top_k_out_of_range_names_the_valid_range(value, photo):
    out = run("classify", str(photo), "--top-k", value)
    assert out.returncode == 2 and "argument --top-k" in out.stderr and "choose 1 to 10" in out.stderr


@pytest.mark.parametrize("args", [["--help"], ["classify", "--help"], ["download", "--help"], ["serve", "--help"]])
def test_help_shows_no_raw_markup(args):
    out = run(*args)
    assert out.returncode == 0 and "usage: python -m dashboard" in out.stdout
    assert "``" not in out.stdout and "**" not in out.stdout and "`" not in out.stdout


def test_missing_hub_model_without_network_fails_at_once_with_the_reason(photo, tmp_path):
    out = run("classify", str(photo), "--model", "acme/nothing-here",
              env={**UNREACHABLE, "HF_HOME": str(tmp_path / "hf")})
    assert out.returncode == 1, out.stderr
    assert "the network is unreachable" in out.stderr and "Connection refused" in out.stderr
    assert "Retrying" not in out.stderr  # one request, no 30 s of retries
    assert "(OSError)" not in out.stderr and "Traceback" not in out.stderr


def test_download_of_a_hub_model_without_network_says_so(tmp_path):
    out = run("download", "facebook/deit-tiny-patch16-224", env={**UNREACHABLE, "HF_HOME": str(tmp_path / "hf")})
    assert out.returncode == 1
    assert "cannot download facebook/deit-tiny-patch16-224: the network is unreachable" in out.stderr
    assert "python -m dashboard download" not in out.stderr and "Retrying" not in out.stderr


def test_hub_warnings_are_printed_once():
    code = ("from dashboard.logsetup import configure_logging; configure_logging();"
            "from huggingface_hub.utils import logging as hl;"
            "hl.get_logger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stderr.count("Retrying in 1s") == 1, out.stderr
