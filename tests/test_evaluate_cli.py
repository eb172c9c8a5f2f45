"""``python -m dashboard evaluate`` run as a user would: a subprocess with the offline caches."""

from __future__ import annotations

import csv
import json

import evalkit
from test_cli import run


def test_evaluate_a_folder_json_csv_and_progress_bar(model_caches, tmp_path):
    folder = evalkit.labelled_folder(tmp_path / "photos", per_class=2,
                                     names={"red": "tench", "green": "207", "blue": "n01443537", "yellow": "zebras"})
    (folder / "tench" / "notes.txt").write_text("x")
    out = tmp_path / "results.csv"
    proc = run("evaluate", str(folder), "--model", "squeezenet1_1", "--model", "resnet18", "--batch-size", "3",
               "--limit", "7", "--out", str(out), "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["images"] == 7 and report["planned"] == 7 and report["batch_size"] == 3
    assert [m["key"] for m in report["models"]] == ["squeezenet1_1", "resnet18"]
    for m in report["models"]:
        assert m["unmatched_classes"] == ["zebras"] and m["evaluated"] + m["unmatched_images"] == 7
        assert m["matched_by"] == {"207": "index", "n01443537": "wordnet id", "tench": "label"}
        assert 0 <= m["top1"] <= m["top5"] <= m["evaluated"] and len(m["top1_ci"]) == 2
    assert report["disagreements"][0]["compared"] == 7
    assert {"name": "tench/notes.txt", "reason": "not an image file"} in report["skipped"]
    assert "7/7" in proc.stderr  # the progress bar
    with out.open() as f:
        assert len(list(csv.DictReader(f))) == 14  # one row per image and model


def test_evaluate_text_report_and_errors(model_caches, tmp_path):
    folder = evalkit.labelled_folder(tmp_path / "photos", per_class=2, classes=("red",), names={"red": "tench"})
    proc = run("evaluate", str(folder), "--model", "squeezenet1_1")
    assert proc.returncode == 0, proc.stderr
    assert "2 images evaluated of 2 (local engine" in proc.stdout and "top-1 95% CI" in proc.stdout
    missing = run("evaluate", str(tmp_path / "nowhere"), "--model", "squeezenet1_1")
    assert missing.returncode == 1 and "The dataset was not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = run("evaluate", str(folder), "--address", "ray://x:1")
    assert bad.returncode == 1 and "--address is for --engine ray" in bad.stderr


def test_evaluate_on_onnxruntime_from_the_command_line(model_caches, tmp_path):
    folder = evalkit.labelled_folder(tmp_path / "photos", per_class=2,
                                     names={"red": "tench", "green": "207", "blue": "n01443537", "yellow": "goldfish"})
    out = tmp_path / "results.csv"
    reports = {}
    for runtime in ("pytorch", "onnxruntime"):
        proc = run("evaluate", str(folder), "--model", "squeezenet1_1", "--runtime", runtime, "--json",
                   "--out", str(out), "--device", "cpu")
        assert proc.returncode == 0, proc.stderr
        (reports[runtime],) = json.loads(proc.stdout)["models"]
        with out.open() as f:
            assert {row["runtime"] for row in csv.DictReader(f)} == {runtime}
    torch_model, ort_model = reports["pytorch"], reports["onnxruntime"]
    assert (ort_model["key"], ort_model["runtime"]) == ("squeezenet1_1@onnxruntime", "onnxruntime")
    for field in ("evaluated", "top1", "top5", "per_class"):
        assert ort_model[field] == torch_model[field]
    text = run("evaluate", str(folder), "--model", "squeezenet1_1@onnxruntime-int8", "--device", "cpu")
    assert text.returncode == 0, text.stderr
    assert "squeezenet1_1@onnxruntime-int8" in text.stdout and "onnxruntime-int8" in text.stdout
    bad = run("evaluate", str(folder), "--model", "squeezenet1_1", "--runtime", "tensorrt")
    assert bad.returncode == 1 and "Unknown runtime 'tensorrt'" in bad.stderr and "Traceback" not in bad.stderr
