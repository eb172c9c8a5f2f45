"""Heatmaps through the API (gradio_client) and the command line."""

from __future__ import annotations

import json

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.test_cli import run


def test_explain_api_needs_only_the_image(client, photo):
    overlay, meta = client.predict(handle_file(str(photo)), api_name="/explain")
    assert meta["model"] == "resnet18" and meta["method"] == "gradcam" and meta["class_specific"]
    with Image.open(photo) as original, Image.open(overlay) as drawn:
        assert drawn.size == original.size and drawn.mode == "RGB"
    assert meta["ms"] > 0 and meta["colormap"] == "jet"
    # the same top-1 as classification
    label, _, _ = client.predict(handle_file(str(photo)), "resnet18", 1, api_name="/classify_resnet")
    assert meta["class"]["label"] == label["label"]


def test_explain_api_any_model_class_and_method(client, photo):
    _, meta = client.predict(handle_file(str(photo)), "google/vit-base-patch16-224", "crane (517)",
                             "rollout", 0.7, api_name="/explain")
    assert meta["class"] == {"index": 517, "label": "crane (517)", "probability": meta["class"]["probability"]}
    assert meta["method"] == "rollout" and not meta["class_specific"]
    _, meta = client.predict(handle_file(str(photo)), "resnet18", "7", "gradcam++", api_name="/explain")
    assert meta["class"]["index"] == 7 and meta["method"] == "gradcam++"


@pytest.mark.parametrize("args, message", [
    (("resnet18", "1000"), "outside ResNet-18's 1000 classes"),
    (("resnet18", "no such class"), "has no class named"),
    (("resnet18", "", "rollout"), "does not apply to ResNet-18"),
    (("resnet18", "", "magic"), "Unknown heatmap method"),
    (("resnet18", "", "gradcam", 3), "opacity must be between 0 and 1"),
    (("resnet19",), "Unknown model 'resnet19'"),
])
def test_explain_api_bad_requests_get_clear_messages(client, photo, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(photo)), *args, api_name="/explain")


def test_explain_api_without_image_asks_for_one(client):
    with pytest.raises(AppError, match="Upload an image first"):
        client.predict(None, api_name="/explain")


def test_compare_explanations_one_titled_overlay_per_model(client, photo):
    keys = ["resnet18", "google/vit-base-patch16-224", "squeezenet1_1"]
    *slots, details = client.predict(handle_file(str(photo)), keys, api_name="/compare_explain")
    visible = [s for s in slots if s.get("visible")]
    assert len(visible) == 3 and slots[3]["visible"] is False
    assert [d["method"] for d in details] == ["gradcam", "rollout", "gradcam"]
    for slot, d in zip(visible, details):
        assert slot["label"].startswith(f"{d['model_name']} · {d['class']['label']} · ")
        assert slot["label"].endswith(" ms")
    # defaults: the Compare tab's two default models
    *slots, details = client.predict(handle_file(str(photo)), api_name="/compare_explain")
    assert [d["model"] for d in details] == ["resnet18", "google/vit-base-patch16-224"]


def test_compare_explanations_take_a_runtime_and_refuse_all_but_pytorch(client, photo):
    keys = ["squeezenet1_1", "resnet18"]
    *slots, details = client.predict(handle_file(str(photo)), keys, "auto", 0.5, "pytorch",
                                     api_name="/compare_explain")
    assert [d["model"] for d in details] == keys and sum(bool(s.get("visible")) for s in slots) == 2
    for runtime in ("onnxruntime", "onnxruntime-int8"):
        with pytest.raises(AppError, match="Heatmaps are computed with PyTorch only: ONNX Runtime"):
            client.predict(handle_file(str(photo)), keys, "auto", 0.5, runtime, api_name="/compare_explain")
    with pytest.raises(AppError, match="Unknown runtime 'tensorrt'. Valid runtimes: pytorch, onnxruntime"):
        client.predict(handle_file(str(photo)), keys, "auto", 0.5, "tensorrt", api_name="/compare_explain")


def test_compare_explanations_over_plain_http_send_every_input(app_url, photo):
    """curl's way: gradio's HTTP route needs every input, the runtime last."""
    from benchmarks.server import RawClient

    raw = RawClient(app_url)
    try:
        image = raw.upload(photo)
        *slots, details = raw.call("compare_explain", [image, ["squeezenet1_1"], "auto", 0.5, "pytorch"])
        assert [d["model"] for d in details] == ["squeezenet1_1"] and details[0]["method"] == "gradcam"
        with pytest.raises(RuntimeError, match="Heatmaps are computed with PyTorch only") as refused:
            raw.call("compare_explain", [image, ["squeezenet1_1"], "auto", 0.5, "onnxruntime-int8"])
        assert "Traceback" not in str(refused.value) and "/tmp" not in str(refused.value)
    finally:
        raw.close()


def test_compare_explanations_refuse_another_runtime_before_any_model_loads(model_caches, photo, tmp_path):
    from dashboard.errors import ExplainError
    from dashboard.handlers import Handlers
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    service = ClassificationService(resolve_settings(device="cpu", onnx_cache_dir=str(tmp_path / "onnx")))
    handlers = Handlers(service, tmp_path / "exports")
    with pytest.raises(ExplainError, match="Heatmaps are computed with PyTorch only: ONNX Runtime int8"):
        handlers.explain_compare(str(photo), ["squeezenet1_1", "resnet18"], "auto", 0.5,
                                 lambda *a, **k: None, "onnxruntime-int8")
    assert not any(service.is_loaded(key, runtime) for key in ("squeezenet1_1", "resnet18")
                   for runtime in ("pytorch", "onnxruntime", "onnxruntime-int8"))
    assert not (tmp_path / "onnx").exists()  # nothing exported


def test_cli_explain_writes_the_overlay(model_caches, photo, tmp_path, capsys):
    out_file = tmp_path / "overlay.png"
    out = run("explain", str(photo), "--model", "squeezenet1_1", "--class", "tabby", "--out", str(out_file),
              "--json", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    meta = json.loads(out.stdout)
    assert meta["class"]["label"] == "tabby" and meta["method"] == "gradcam" and meta["out"] == str(out_file)
    with Image.open(out_file) as drawn, Image.open(photo) as original:
        assert drawn.format == "PNG" and drawn.size == original.size
    from dashboard.__main__ import main  # the refusal comes before any model loads: in-process

    assert main(["explain", str(photo), "--model", "squeezenet1_1", "--method", "rollout",
                 "--out", str(tmp_path / "never.png")]) == 1
    err = capsys.readouterr().err
    assert "does not apply to SqueezeNet 1.1" in err and "Traceback" not in err
    assert not (tmp_path / "never.png").exists()
