"""``python -m dashboard sweep``, run as a user would: a subprocess with the offline caches."""

from __future__ import annotations

import csv
import io
import json

from dashboard.__main__ import main
from tests.test_cli import run


def test_sweep_json_with_two_models(model_caches, photo):
    out = run("sweep", str(photo), "--model", "resnet18", "--model", "squeezenet1_1", "--perturbation", "blur",
              "--steps", "5", "--seed", "3", "--json", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert [r["model"] for r in records] == ["resnet18", "squeezenet1_1"]
    for r in records:
        assert r["perturbation"] == "gaussian_blur" and r["seed"] == 3 and r["batch_size"] == 5
        assert [s["strength"] for s in r["steps"]] == [0, 0.25, 0.5, 0.75, 1]
        assert [s["value"] for s in r["steps"]] == [0, 2, 4, 6, 8]  # sigma in pixels
        assert r["steps"][0]["top1_index"] == r["clean_top1"]["index"]
        assert r["steps"][0]["clean_top1_probability"] == r["clean_top1"]["probability"]
        change = r["first_change_strength"]
        tops = [s["top1_index"] for s in r["steps"]]
        assert change is None if len(set(tops)) == 1 else change == r["steps"][
            next(i for i, t in enumerate(tops) if t != tops[0])]["strength"]


# In-process from here: the same main() as ``python -m dashboard``, without a new interpreter each time.
def test_sweep_csv_and_text(model_caches, photo, capsys):
    args = ["sweep", str(photo), "--model", "squeezenet1_1", "--device", "cpu"]
    assert main([*args, "--perturbation", "jpeg", "--steps", "3", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["strength"] for r in rows] == ["0.0", "0.5", "1.0"] and rows[0]["model"] == "squeezenet1_1"
    assert [float(r["value"]) for r in rows] == [100, 50, 1]  # JPEG quality
    assert main([*args, "--perturbation", "noise", "--steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "gaussian_noise sweep, 2 strengths from 0 (standard deviation 0) to 1 (standard deviation 0.5)" in text
    assert "SqueezeNet 1.1: clean top-1" in text and "one forward of 2 images" in text


def test_sweep_refuses_bad_parameters_with_a_message(model_caches, photo, capsys):
    assert main(["sweep", str(photo), "--perturbation", "fog", "--steps", "1000"]) == 1
    assert "error: The number of steps must be a whole number from 2 to 24 (got 1000)." in capsys.readouterr().err
    assert main(["sweep", str(photo), "--perturbation", "fog"]) == 1
    err = capsys.readouterr().err
    assert "Unknown perturbation 'fog'" in err and "Traceback" not in err
