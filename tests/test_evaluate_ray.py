"""The Ray Data engine (a local Ray instance, 2 CPUs) gives the same numbers as the local engine,
on PyTorch and on ONNX Runtime (the runtime travels to the actors in the model's key).

Both engines run in a child process (tests/ray_parity.py), so that Ray never enters the pytest
process; the comparison is made here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import evalkit

ROOT = Path(__file__).resolve().parent.parent


def test_ray_engine_gives_the_same_numbers_as_the_local_engine(model_caches, tmp_path):
    try:
        import importlib.util

        assert importlib.util.find_spec("ray") is not None
    except AssertionError:  # requirements-dev.txt installs it (requirements-ray.txt): CI must run this
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail("ray is missing: pip install -r requirements-dev.txt", pytrace=False)
        pytest.skip("ray is missing: pip install -r requirements-ray.txt")
    folder = evalkit.labelled_folder(tmp_path / "colours")
    (folder / "red" / "broken.png").write_bytes(b"not an image")  # skipped by both, with the same reason
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "ray_parity.py"), str(folder)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    local, distributed = out["local"], out["ray"]
    assert (local["engine"], distributed["engine"]) == ("local", "ray")
    assert not out["ray_still_up"]  # the local instance it started is shut down
    assert distributed["images"] == local["images"] == 40 and out["last_done"] == 41
    assert distributed["models"] == local["models"]
    key, top1, top5, per_class, confusions, _, unmatched = local["models"][0]
    assert (key, top1, top5, per_class["red"], unmatched) == ("colour-test", 37, 40, [10, 8], [])
    assert confusions == [list(c) for c in evalkit.EXPECTED_CONFUSIONS]
    assert distributed["predictions"] == local["predictions"]
    assert distributed["disagreements"] == local["disagreements"] and local["disagreements"][0][0] == 20
    assert distributed["skipped"] == local["skipped"] and "not a readable PNG" in dict(local["skipped"])["red/broken.png"]
    assert distributed["gallery"] == local["gallery"]
    # the runtime reaches the actors: the ONNX Runtime model is evaluated there, with the local numbers
    onnx_local, onnx_ray = out["onnx_local"], out["onnx_ray"]
    assert out["onnx_runtimes"] == ["pytorch", "onnxruntime"] and onnx_ray["images"] == 8
    assert [m[0] for m in onnx_ray["models"]] == ["squeezenet1_1", "squeezenet1_1@onnxruntime"]
    assert onnx_ray["models"] == onnx_local["models"] and onnx_ray["predictions"] == onnx_local["predictions"]
    assert onnx_ray["models"][0][1:3] == onnx_ray["models"][1][1:3]  # top-1 and top-5: PyTorch's = ONNX's
