"""Runtimes beside PyTorch (issue 12): ONNX Runtime fp32 and int8 on random-init checkpoints.

Exports: ResNet-18 and ViT-B/16 at full size (once per session, shared through the session's
ONNX cache; ViT-B/16's export and gate take about 12 s here), SqueezeNet 1.1, tiny ViT/DeiT
configs, a tiny ResNeXt built here. Speed is measured by benchmarks/section_runtimes.py only.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dashboard import random_weights
from dashboard.errors import RuntimeUnavailableError, UnknownRuntimeError
from dashboard.models import onnx_backend, runtimes
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings

ROOT = Path(__file__).resolve().parent.parent
DEIT = "facebook/deit-tiny-patch16-224"  # tiny config in the session caches
VIT_B16 = "google/vit-base-patch16-224"  # full size in the session caches
EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.jpg"))


def _onnx_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.onnx") if not p.name.startswith("."))


# --- the choice encoding ------------------------------------------------------------------------
def test_choice_encoding_and_validation():
    assert runtimes.split_choice("resnet18") == ("resnet18", "pytorch")
    assert runtimes.split_choice("resnet18", "onnxruntime") == ("resnet18", "onnxruntime")
    assert runtimes.split_choice("org/name@onnxruntime-int8", "pytorch") == ("org/name", "onnxruntime-int8")
    assert runtimes.join_choice("resnet18", "pytorch") == "resnet18"  # old keys stay what they were
    assert runtimes.join_choice("resnet18", "onnxruntime") == "resnet18@onnxruntime"
    assert runtimes.display_name("ResNet-18", "onnxruntime-int8") == "ResNet-18 · ONNX Runtime int8"
    for bad in ("tensorrt", "ONNXRUNTIME", 3, ["pytorch"]):
        with pytest.raises(UnknownRuntimeError, match="Valid runtimes: pytorch, onnxruntime, onnxruntime-int8"):
            runtimes.validate_runtime(bad)
    with pytest.raises(UnknownRuntimeError, match="Unknown runtime 'x'"):
        runtimes.split_choice("resnet18@x")


def test_onnx_cache_location_setting(monkeypatch, tmp_path):
    assert resolve_settings(env={}).onnx_cache_dir == ""
    assert resolve_settings(env={"DASHBOARD_ONNX_CACHE_DIR": "/srv/onnx"}).onnx_cache_dir == "/srv/onnx"
    with pytest.raises(ValueError, match="onnx_cache_dir"):
        resolve_settings(env={}, onnx_cache_dir="bad\x00dir")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert onnx_backend.cache_root("") == tmp_path / "dashboard" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert onnx_backend.cache_root(None) == Path.home() / ".cache" / "dashboard" / "onnx"
    assert onnx_backend.cache_root("~/x") == Path.home() / "x"


def test_parity_check_sees_differences_and_forgives_ties():
    ref = np.array([[0.5, 0.2, 0.1, 0.1, 0.05, 0.05]])
    assert onnx_backend.compare_probabilities(ref, ref + 1e-7).ok
    swapped = ref[:, [0, 1, 3, 2, 4, 5]]  # 2 and 3 tie: their order is noise, not a disagreement
    assert onnx_backend.compare_probabilities(ref, swapped).same_top
    moved = np.array([[0.2, 0.5, 0.1, 0.1, 0.05, 0.05]])
    report = onnx_backend.compare_probabilities(ref, moved)
    assert not report.ok and not report.same_top and report.max_abs_diff == pytest.approx(0.3)
    assert not onnx_backend.compare_probabilities(ref, ref + 2e-4).ok  # over the 1e-4 tolerance


# --- parity for each built-in family ------------------------------------------------------------
@pytest.mark.parametrize("key", ["resnet18", "squeezenet1_1", "google/vit-large-patch16-224", DEIT])
def test_onnxruntime_matches_pytorch(key, service, photo):
    """resnet18 at full size; the ViT/DeiT presets are tiny configs in the session caches."""
    torch_result = service.classify(photo, key, top_k=5)
    ort_result = service.classify(photo, key, top_k=5, runtime="onnxruntime")
    p_torch, p_ort = torch_result.prediction.probabilities, ort_result.prediction.probabilities
    assert np.abs(p_torch - p_ort).max() <= 1e-4
    assert onnx_backend.compare_probabilities(p_torch[None], p_ort[None]).same_top
    assert ort_result.prediction.labels == torch_result.prediction.labels  # labels shared
    info = ort_result.info
    assert info.runtime == "onnxruntime" and info.key == key and info.file_bytes > 0
    assert info.display_name == f"{torch_result.info.display_name} · ONNX Runtime"
    assert "parity with PyTorch: max |Δp|" in info.runtime_note
    times = ort_result.prediction.times
    assert times.preprocess_ms > 0 and times.forward_ms > 0 and times.postprocess_ms > 0
    classifier, _ = service.model(key, "onnxruntime")
    batch_dim = classifier.session.get_inputs()[0].shape[0]
    assert not isinstance(batch_dim, int)  # a dynamic batch axis
    assert service.is_loaded(key, "onnxruntime") and service.is_loaded(f"{key}@onnxruntime")


def test_full_size_vit_b16_matches_pytorch(service, photo):
    """ViT-B/16 at full size (google/vit-base-patch16-224's layout, 86M random-init parameters):
    exported, gated and answering within 1e-4 of PyTorch with the same top-5."""
    torch_result = service.classify(photo, VIT_B16, top_k=5)
    assert torch_result.info.num_params > 85e6  # the full-size checkpoint, not a tiny config
    ort_result = service.classify(photo, VIT_B16, top_k=5, runtime="onnxruntime")
    p_torch, p_ort = torch_result.prediction.probabilities, ort_result.prediction.probabilities
    assert np.abs(p_torch - p_ort).max() <= 1e-4
    assert onnx_backend.compare_probabilities(p_torch[None], p_ort[None]).same_top
    assert [s.index for s in ort_result.prediction.top] == [s.index for s in torch_result.prediction.top]
    assert ort_result.info.file_bytes > 300e6  # fp32 weights: about 4 bytes a parameter
    assert "parity with PyTorch: max |Δp|" in ort_result.info.runtime_note


def test_custom_hub_classifier_runs_on_onnxruntime(model_caches, service, photo):
    """A free-form Hub id (not a preset) is exported like the built-ins, keyed by its commit."""
    from conftest import HF_HOME

    repo = "test-org/tiny-vit-runtimes"
    snapshot = random_weights.write_hub_checkpoint(repo, HF_HOME, tiny=True, seed=3)
    result = service.classify(photo, f"{repo}@onnxruntime", top_k=5)
    torch_probs = service.classify(photo, repo, top_k=5).prediction.probabilities
    assert result.info.runtime == "onnxruntime" and result.info.display_name == f"{repo} · ONNX Runtime"
    assert np.abs(result.prediction.probabilities - torch_probs).max() <= 1e-4
    (record,) = [p for p in (onnx_backend.cache_root(service.settings.onnx_cache_dir) / "test-org--tiny-vit-runtimes")
                 .glob("onnxruntime-*.json")]
    assert json.loads(record.read_text())["key"]["weights"] == f"hub-commit:{snapshot.name}"


def test_cuda_provider_is_chosen_when_present(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_backend.providers_for("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}),
                                                    "CPUExecutionProvider"]
    assert onnx_backend.providers_for("cuda")[0] == ("CUDAExecutionProvider", {"device_id": 0})
    assert onnx_backend.providers_for("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_backend.providers_for("cuda") == ["CPUExecutionProvider"]  # CPU-only onnxruntime wheel


def test_tiny_resnext_exports_with_parity(tmp_path):
    """The ResNeXt family (grouped convolutions) at a tiny size, through export and the gate."""
    import torch
    from torchvision.models.resnet import Bottleneck, ResNet

    from dashboard.models.classifier import Classifier, ModelInfo

    torch.manual_seed(0)
    model = ResNet(Bottleneck, [1, 1, 1, 1], groups=32, width_per_group=4, num_classes=10).eval()
    info = ModelInfo("tiny-resnext", "tiny ResNeXt", "torchvision", 0, 0, (64, 64), "random", 10)
    classifier = Classifier(info, model, torch.stack, [str(i) for i in range(10)], torch.device("cpu"))
    path = tmp_path / "tiny.onnx"
    assert onnx_backend.export(classifier, path) == "dynamo"
    inputs = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    session = onnx_backend.open_session(path, "cpu", 1)
    report = onnx_backend.compare_probabilities(onnx_backend.torch_probabilities(classifier, inputs),
                                                onnx_backend.session_probabilities(session, inputs.numpy()))
    assert report.ok and report.max_abs_diff <= 1e-4


def test_int8_records_agreement_and_shows_it(service, photo):
    result = service.classify(photo, DEIT, top_k=3, runtime="onnxruntime-int8")
    info = result.info
    assert info.runtime == "onnxruntime-int8" and info.display_name == "DeiT-Ti · ONNX Runtime int8"
    assert f"on {len(EXAMPLES)} example photos: top-1 agreement" in info.runtime_note
    assert "JS divergence" in info.runtime_note
    entry = next(p for p in _onnx_files(onnx_backend.cache_root(service.settings.onnx_cache_dir))
                 if "deit-tiny" in str(p) and p.name.startswith("onnxruntime-int8-"))
    record = json.loads(entry.with_suffix(".json").read_text())
    assert record["int8"]["photos"] == len(EXAMPLES)
    assert 0.0 <= record["int8"]["top1_agreement"] <= 1.0 and record["int8"]["js_mean"] >= 0.0
    assert info.file_bytes == record["bytes"] == entry.stat().st_size


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnxruntime-int8"])
def test_merged_batches_equal_one_at_a_time(runtime, service):
    from PIL import Image

    classifier, _ = service.model(DEIT, runtime)
    images = [Image.open(p).convert("RGB") for p in EXAMPLES[:4]]
    merged = classifier.classify_batch(images, top_k=5)
    assert [p.batch_size for p in merged] == [4] * 4
    for image, together in zip(images, merged):
        alone = classifier.classify(image, top_k=5)
        assert np.abs(alone.probabilities - together.probabilities).max() <= 1e-6
        assert [s.index for s in alone.top] == [s.index for s in together.top]


# --- the gate refuses a broken export ----------------------------------------------------------
def test_weights_changed_after_export_are_caught_by_the_gate(tmp_path, monkeypatch, photo):
    import torch

    real_export = onnx_backend.export

    def export_then_change_weights(classifier, path):
        exporter = real_export(classifier, path)
        with torch.no_grad():  # the file now holds other weights than the model it is checked against
            classifier.model.classifier.weight.add_(torch.randn_like(classifier.model.classifier.weight))
        return exporter

    monkeypatch.setattr(onnx_backend, "export", export_then_change_weights)
    service = ClassificationService(resolve_settings(device="cpu", onnx_cache_dir=str(tmp_path)))
    with pytest.raises(RuntimeUnavailableError, match=r"DeiT-Ti cannot run on ONNX Runtime: the exported "
                       r"model disagrees with PyTorch on the parity check .*Use the pytorch runtime"):
        service.classify(photo, DEIT, runtime="onnxruntime")
    assert _onnx_files(tmp_path) == []  # the bad file is not kept
    monkeypatch.setattr(onnx_backend, "export", real_export)
    # the refusal is remembered for these weights and this exporter: no second export
    with pytest.raises(RuntimeUnavailableError, match="disagrees with PyTorch"):
        service.classify(photo, DEIT, runtime="onnxruntime-int8")
    assert _onnx_files(tmp_path) == []
    assert service.classify(photo, DEIT).info.runtime == "pytorch"  # PyTorch keeps working


# --- the on-disk cache: across processes, damaged files, changed weights -----------------------
def test_export_cache_across_processes_damage_and_new_weights(tmp_path, monkeypatch, photo, caplog):
    torch_home, onnx_dir = tmp_path / "torch", tmp_path / "onnx"
    random_weights.write_torchvision_checkpoint("squeezenet1_1", torch_home, seed=0)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("DASHBOARD_ONNX_CACHE_DIR", str(onnx_dir))

    # 1. exported ahead of time by another process: `download --runtime onnxruntime`
    out = subprocess.run([sys.executable, "-m", "dashboard", "download", "squeezenet1_1", "--runtime", "onnxruntime"],
                         cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ok: squeezenet1_1 on onnxruntime" in out.stdout and "parity with PyTorch" in out.stdout
    (exported,) = _onnx_files(onnx_dir)
    before = exported.stat()

    # 2. reused by this process, untouched
    caplog.set_level(logging.INFO, logger="dashboard.models.onnx_backend")
    first = ClassificationService(resolve_settings(device="cpu")).classify(photo, "squeezenet1_1", 5,
                                                                          runtime="onnxruntime")
    assert "reusing the ONNX export" in caplog.text and "exporting to ONNX" not in caplog.text
    assert exported.stat().st_mtime_ns == before.st_mtime_ns and exported.stat().st_ino == before.st_ino

    # 3. a truncated file is exported again
    exported.write_bytes(exported.read_bytes()[: before.st_size // 2])
    caplog.clear()
    again = ClassificationService(resolve_settings(device="cpu")).classify(photo, "squeezenet1_1", 5,
                                                                          runtime="onnxruntime")
    assert "damaged or changed; exporting it again" in caplog.text
    assert _onnx_files(onnx_dir) == [exported] and exported.stat().st_size == before.st_size
    assert np.abs(again.prediction.probabilities - first.prediction.probabilities).max() <= 1e-6

    # 4. new weights in the same file: a new key, a new export, the old file removed
    random_weights.write_torchvision_checkpoint("squeezenet1_1", torch_home, seed=1)
    caplog.clear()
    service = ClassificationService(resolve_settings(device="cpu"))
    changed = service.classify(photo, "squeezenet1_1", 5, runtime="onnxruntime")
    (new_file,) = _onnx_files(onnx_dir)
    assert new_file != exported and "exporting to ONNX" in caplog.text
    assert np.abs(changed.prediction.probabilities - first.prediction.probabilities).max() > 1e-4
    torch_now = service.classify(photo, "squeezenet1_1", 5).prediction.probabilities
    assert np.abs(changed.prediction.probabilities - torch_now).max() <= 1e-4


def test_cli_classify_runtime(model_caches, photo, capsys):
    from dashboard.__main__ import main

    assert main(["classify", str(photo), "--model", DEIT, "--model", f"{DEIT}@onnxruntime-int8",
                 "--runtime", "onnxruntime", "--json", "--device", "cpu"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["runtime"]) for r in records] == [(DEIT, "onnxruntime"), (DEIT, "onnxruntime-int8")]
    assert main(["classify", str(photo), "--runtime", "tensorrt"]) == 1
    assert "Unknown runtime 'tensorrt'. Valid runtimes: pytorch, onnxruntime" in capsys.readouterr().err


# --- resources ---------------------------------------------------------------------------------
def test_sessions_count_in_the_memory_budget_and_follow_the_thread_rule(model_caches, photo):
    service = ClassificationService(resolve_settings(device="cpu", memory_budget_mb=1, workers=2))
    for runtime in ("pytorch", "onnxruntime", "onnxruntime-int8"):
        service.classify(photo, DEIT, runtime=runtime)
    ort_bytes = sum(service.model(DEIT, r)[0].info.file_bytes for r in ("onnxruntime", "onnxruntime-int8"))
    assert service.cache.loaded_bytes() <= max(ort_bytes, 2**20)
    assert DEIT in service.cache.evicted  # the PyTorch entry made room for the two sessions
    classifier, _ = service.model(DEIT, "onnxruntime")
    cores = len(os.sched_getaffinity(0))
    threads = classifier.session.get_session_options().intra_op_num_threads
    assert threads == max(1, cores // 2) == onnx_backend.intra_op_threads(2)
    a, _ = service.model(f"{DEIT}@onnxruntime")
    assert a is classifier  # one session per (model, runtime)


# --- the app and its API -----------------------------------------------------------------------
def test_api_runtime_parameter_default_pairs_and_errors(client, photo):
    from gradio_client import handle_file

    from conftest import app_error

    # old calls (no runtime) keep working and run on PyTorch
    _, times, card = client.predict(handle_file(str(photo)), DEIT, "", 3, api_name="/classify_vit")
    assert times["data"][0][times["headers"].index("runtime")] == "pytorch" and "runtime PyTorch" in card
    label, times, card = client.predict(handle_file(str(photo)), DEIT, "", 3, "onnxruntime-int8",
                                        api_name="/classify_vit")
    row = dict(zip(times["headers"], times["data"][0]))
    assert row["runtime"] == "onnxruntime-int8" and row["model"] == "DeiT-Ti · ONNX Runtime int8"
    assert "runtime ONNX Runtime int8 · file" in card and "top-1 agreement" in card
    out = client.predict(handle_file(str(photo)), [DEIT], 3, ["pytorch", "onnxruntime"], api_name="/compare")
    # the photo is an example with a known class: titles end with its right/wrong mark (issue 9)
    titles = [u["label"] for u in out[:4] if u.get("visible")]
    assert [t.split(" · ✓")[0].split(" · ✗")[0] for t in titles] == ["DeiT-Ti", "DeiT-Ti · ONNX Runtime"]
    agreement = out[5]
    assert agreement["data"][0][2] is True and agreement["data"][0][4] <= 1e-4  # same answer, JS ~ 0
    with app_error("Unknown runtime 'tensorrt'. Valid runtimes: pytorch, onnxruntime, onnxruntime-int8"):
        client.predict(handle_file(str(photo)), "resnet18", 3, "tensorrt", api_name="/classify_resnet")
    with app_error("Unknown runtime"):
        client.predict(handle_file(str(photo)), ["resnet18", DEIT], 3, ["pytorch", "fp16"], api_name="/compare")
    with app_error("between 2 and 4 model and runtime pairs"):
        client.predict(handle_file(str(photo)), ["resnet18", DEIT], 3, list(runtimes.RUNTIMES), api_name="/compare")


def test_without_onnxruntime_only_pytorch_is_offered_and_the_api_says_why(monkeypatch, launch_app, photo):
    from gradio_client import handle_file

    from conftest import app_error

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    assert runtimes.available_runtimes() == ["pytorch"]
    app = launch_app()
    selectors = {b.elem_id: b for b in app.demo.blocks.values() if str(b.elem_id).endswith("-runtime")}
    assert set(selectors) == {"resnet-runtime", "vit-runtime", "compare-runtime", "robust-runtime", "evaluate-runtime"}
    for selector in selectors.values():
        assert selector.choices == [("PyTorch", "pytorch")] and "not installed" in selector.info
    with app_error("ONNX Runtime is not installed on this server .*only PyTorch is available"):
        app.client.predict(handle_file(str(photo)), "resnet18", 3, "onnxruntime", api_name="/classify_resnet")
    label, _, _ = app.client.predict(handle_file(str(photo)), "resnet18", 3, api_name="/classify_resnet")
    assert len(label["confidences"]) == 3
    service = ClassificationService(resolve_settings(device="cpu"))
    with pytest.raises(RuntimeUnavailableError, match="pip install onnxruntime"):
        service.classify(photo, DEIT, runtime="onnxruntime-int8")


def test_fp32_and_int8_loading_at_once_export_once(tmp_path, monkeypatch, model_caches, photo):
    from concurrent.futures import ThreadPoolExecutor

    calls = []
    real_export = onnx_backend.export
    monkeypatch.setattr(onnx_backend, "export", lambda c, p: calls.append(p) or real_export(c, p))
    service = ClassificationService(resolve_settings(device="cpu", onnx_cache_dir=str(tmp_path)))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda r: service.classify(photo, DEIT, 3, runtime=r),
                                ["onnxruntime", "onnxruntime-int8"]))
    assert [r.info.runtime for r in results] == ["onnxruntime", "onnxruntime-int8"]
    assert len(calls) == 1 and len(_onnx_files(tmp_path)) == 2
    assert not [p for p in tmp_path.rglob(".tmp-*")]  # no temporary file left behind


# --- runtimes in robustness, sweeps and explanations -------------------------------------------
def test_sweep_and_robustness_run_on_the_chosen_runtime(service, photo):
    """The same model on PyTorch and ONNX Runtime in one sweep: two curves that agree (parity),
    named apart; the runtime's answers are cached under their own key, never PyTorch's."""
    sweep = service.sweep(photo, [DEIT, f"{DEIT}@onnxruntime"], "blur", 3, 0)
    names = [m.info.display_name for m in sweep.models]
    assert names == ["DeiT-Ti", "DeiT-Ti · ONNX Runtime"]
    assert [m.info.runtime for m in sweep.models] == ["pytorch", "onnxruntime"]
    torch_curve, ort_curve = (np.array(m.probabilities) for m in sweep.models)
    assert np.abs(torch_curve - ort_curve).max() <= 1e-4
    assert [r["runtime"] for r in sweep.records()] == ["pytorch", "onnxruntime"]
    int8 = service.sweep(photo, [DEIT], "blur", 3, 0, runtime="onnxruntime-int8")
    assert int8.models[0].info.runtime == "onnxruntime-int8" and int8.models[0].batch_size == 3

    plain = service.robustness(photo, [DEIT], "blur", 0.5, top_k=3)
    onnx = service.robustness(photo, [DEIT], "blur", 0.5, top_k=3, runtime="onnxruntime-int8")
    assert plain.answers[0].perturbed.info.runtime == "pytorch"
    assert onnx.answers[0].perturbed.info.runtime == onnx.answers[0].clean.info.runtime == "onnxruntime-int8"
    with pytest.raises(UnknownRuntimeError):
        service.sweep(photo, [DEIT], "blur", 3, 0, runtime="tensorrt")


def test_explain_refuses_other_runtimes_with_the_reason(service, photo, capsys):
    from dashboard.__main__ import main
    from dashboard.errors import ExplainError

    for choice in ({"runtime": "onnxruntime"}, {"key": "resnet18@onnxruntime-int8"}):
        with pytest.raises(ExplainError, match="Heatmaps are computed with PyTorch only: ONNX Runtime"):
            service.explain(photo, choice.get("key", "resnet18"), runtime=choice.get("runtime"))
    assert not service.is_loaded("resnet18", "onnxruntime-int8")  # refused before anything loaded
    assert service.explain(photo, "resnet18", runtime="pytorch").model_name == "ResNet-18"
    assert main(["explain", str(photo), "--model", "resnet18", "--runtime", "onnxruntime",
                 "--out", "unused.png", "--device", "cpu"]) == 1
    assert "Heatmaps are computed with PyTorch only" in capsys.readouterr().err


def test_api_robustness_sweep_and_explain_take_a_runtime(client, photo):
    from gradio_client import handle_file

    from conftest import app_error

    image = handle_file(str(photo))
    _, _, *labels, summary = client.predict(image, [DEIT], "gaussian_blur", 0.5, 0, 0.5, 0.5, 3, "onnxruntime",
                                            api_name="/robustness")
    assert labels[0]["label"].startswith("DeiT-Ti · ONNX Runtime · ") and "At strength 0.5" in summary
    _, changes, _ = client.predict(image, [DEIT], "gaussian_blur", 3, 0, 0.5, 0.5, "onnxruntime-int8", api_name="/sweep")
    assert changes["data"][0][0] == "DeiT-Ti · ONNX Runtime int8"
    _, changes, _ = client.predict(image, [DEIT], "gaussian_blur", 3, 0, 0.5, 0.5, api_name="/sweep")  # old call
    assert changes["data"][0][0] == "DeiT-Ti"
    with app_error("Unknown runtime 'tensorrt'"):
        client.predict(image, [DEIT], "gaussian_blur", 3, 0, 0.5, 0.5, "tensorrt", api_name="/sweep")
    with app_error("Heatmaps are computed with PyTorch only"):
        client.predict(image, "resnet18", "", "auto", 0.5, "onnxruntime-int8", api_name="/explain")
    _, meta = client.predict(image, "resnet18", "", "auto", 0.5, api_name="/explain")  # old call
    assert meta["model"] == "resnet18"
