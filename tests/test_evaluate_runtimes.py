"""Evaluation on another runtime (issues 12 and 10): the same labelled set on PyTorch and ONNX Runtime.

Known answers: the colour model (tests/evalkit.py) and its ONNX Runtime twin score exactly the
same on a folder whose accuracy is known (37 of 40 top-1). Registry models (random weights) are
evaluated by key on each runtime; their accuracy means nothing, only that both runtimes agree.
"""

from __future__ import annotations

import csv

import pytest

import evalkit
from dashboard.errors import UnknownRuntimeError
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings
from test_evaluate import check_known_answers


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return evalkit.labelled_folder(tmp_path_factory.mktemp("colours"))


def test_known_answers_are_the_same_on_onnxruntime(folder, tmp_path):
    colour = evalkit.colour_classifier()
    twin = evalkit.onnx_twin(colour, tmp_path)
    service = ClassificationService(resolve_settings(device="cpu", eval_batch_size=8))
    report = service.evaluate(folder, [colour, twin])
    check_known_answers(report, "colour-test")
    check_known_answers(report, "colour-test@onnxruntime")
    torch_side, ort_side = report.models
    assert (torch_side.runtime, ort_side.runtime) == ("pytorch", "onnxruntime")
    assert (ort_side.top1, ort_side.top5, ort_side.per_class) == (torch_side.top1, torch_side.top5, torch_side.per_class)
    (pair,) = report.disagreements
    assert (pair.compared, pair.differ) == (40, 0)
    summary = report.summary_table().set_index("model")
    assert summary.loc["colour-test@onnxruntime", "runtime"] == "onnxruntime"
    assert summary.loc["colour-test", "runtime"] == "pytorch"
    assert summary.loc["colour-test@onnxruntime", "top-1 %"] == summary.loc["colour-test", "top-1 %"] == 92.5
    out = tmp_path / "results.csv"
    report.write_csv(out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 80 and {(r["model"], r["runtime"]) for r in rows} == {
        ("colour-test", "pytorch"), ("colour-test@onnxruntime", "onnxruntime")}
    by_runtime = {rt: [(r["image"], r["predicted"], r["top-1 correct"]) for r in rows if r["runtime"] == rt]
                  for rt in ("pytorch", "onnxruntime")}
    assert by_runtime["onnxruntime"] == by_runtime["pytorch"]  # image by image, not only in total
    assert report.to_dict()["models"][1]["runtime"] == "onnxruntime"


def test_registry_models_by_key_on_each_runtime(model_caches, tmp_path):
    small = evalkit.labelled_folder(tmp_path / "photos", per_class=2,
                                    names={"red": "tench", "green": "207", "blue": "n01443537", "yellow": "goldfish"})
    service = ClassificationService(resolve_settings(device="cpu", eval_batch_size=4))
    on_torch = service.evaluate(small, ["squeezenet1_1"])
    on_ort = service.evaluate(small, ["squeezenet1_1"], runtime="onnxruntime")
    (t,), (o,) = on_torch.models, on_ort.models
    assert (t.key, t.runtime) == ("squeezenet1_1", "pytorch")
    assert (o.key, o.runtime, o.display_name) == ("squeezenet1_1@onnxruntime", "onnxruntime",
                                                  "SqueezeNet 1.1 · ONNX Runtime")
    assert (o.evaluated, o.top1, o.top5, o.per_class) == (t.evaluated, t.top1, t.top5, t.per_class) and t.evaluated == 8
    assert [p[3] for p in on_ort.predictions] == [p[3] for p in on_torch.predictions]  # the same top-1 labels
    # pairs in one run: "KEY@RUNTIME" beside the runtime argument; "KEY@pytorch" is the plain key
    both = service.evaluate(small, ["squeezenet1_1@pytorch", "squeezenet1_1", "squeezenet1_1@onnxruntime-int8"])
    assert [(m.key, m.runtime) for m in both.models] == [("squeezenet1_1", "pytorch"),
                                                         ("squeezenet1_1@onnxruntime-int8", "onnxruntime-int8")]
    assert both.models[1].evaluated == 8 and both.disagreements[0].compared == 8
    # an unknown runtime is refused before the dataset is even looked at (this path does not exist)
    with pytest.raises(UnknownRuntimeError, match="Unknown runtime 'tensorrt'. Valid runtimes: pytorch"):
        service.evaluate(tmp_path / "nowhere", ["squeezenet1_1"], runtime="tensorrt")
    with pytest.raises(UnknownRuntimeError):
        service.evaluate(small, ["squeezenet1_1@fp16"])
