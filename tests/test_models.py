"""Real loading code against random-init checkpoints in TORCH_HOME / HF_HOME (offline)."""

from __future__ import annotations

import os
import urllib.error

import numpy as np
import pytest
from PIL import Image

from conftest import HF_HOME, TORCH_HOME, ensure_checkpoint, hub_config
from dashboard import random_weights
from dashboard.errors import (
    InferenceError,
    ModelError,
    ModelRefusedError,
    NotAnImageClassifierError,
    WeightsUnavailableError,
)
from dashboard.models import registry, torchvision_backend
from dashboard.service import ClassificationService, resolve_device
from dashboard.settings import resolve_settings


def _check_prediction(result, key, num_classes=1000, top_k=5):
    p = result.prediction
    assert p.model_key == key and len(p.top) == top_k
    assert p.probabilities.shape == (num_classes,) and p.probabilities.dtype == np.float32
    assert abs(float(p.probabilities.sum()) - 1.0) < 1e-4
    probs = [s.probability for s in p.top]
    assert probs == sorted(probs, reverse=True)
    for s in p.top:  # top-k by index, labels attached afterwards
        assert p.probabilities[s.index] == pytest.approx(s.probability, abs=1e-6)
        assert s.label == p.labels[s.index]
    assert len(set(p.labels)) == num_classes  # duplicates told apart
    t = p.times
    assert t.preprocess_ms > 0 and t.forward_ms > 0 and t.postprocess_ms > 0
    assert t.total_ms == pytest.approx(t.preprocess_ms + t.forward_ms + t.postprocess_ms)
    assert p.num_params == result.info.num_params > 0


@pytest.mark.parametrize("key", registry.list_keys("torchvision"))
def test_every_torchvision_key_loads_through_torch_home(key, photo):
    ensure_checkpoint(key)
    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=0))
    result = service.classify(photo, key, top_k=5)
    _check_prediction(result, key)
    weights = torchvision_backend.weights_for(registry.get_spec(key))
    assert result.info.num_params == weights.meta["num_params"]
    assert result.info.input_size == (224, 224)
    assert weights.name in result.info.weights_id
    assert not result.load.cached
    assert service.classify(photo, key, top_k=5).load.cached
    if key not in ("resnet18", "squeezenet1_1"):  # the large ones are not needed again
        torchvision_backend.checkpoint_path(registry.get_spec(key)).unlink()


@pytest.mark.parametrize("key", registry.list_keys("transformers"))
def test_every_transformers_preset_loads_through_hf_home(key, model_caches, service, photo):
    result = service.classify(photo, key, top_k=5)
    _check_prediction(result, key)
    assert result.info.input_size == (224, 224)


def test_imagenet_duplicate_names_stay_apart(service, photo):
    labels = service.classify(photo, "google/vit-base-patch16-224", top_k=3).prediction.labels
    assert labels[134] == "crane (134)" and labels[517] == "crane (517)"
    assert labels[0] == "tench"  # names without a twin are left alone
    result = service.classify(photo, "google/vit-base-patch16-224", top_k=1000).prediction
    assert len(result.label_dict()) == 1000  # no two classes collapse into one entry


def test_torchvision_reference_agreement(model_caches, service, photo):
    """Same weights, same image: torchvision's own transforms + model give the same top-k."""
    import torch
    import torchvision.models as tvm

    weights = tvm.ResNet18_Weights.DEFAULT
    model = tvm.resnet18(weights=weights).eval()
    with torch.inference_mode():
        ref = model(weights.transforms()(Image.open(photo).convert("RGB")).unsqueeze(0)).softmax(-1)[0]
    ref_p, ref_i = ref.topk(5)
    ours = service.classify(photo, "resnet18", top_k=5).prediction
    assert [s.index for s in ours.top] == ref_i.tolist()
    np.testing.assert_allclose([s.probability for s in ours.top], ref_p.numpy(), atol=1e-4)
    np.testing.assert_allclose(ours.probabilities, ref.numpy(), atol=1e-4)


@pytest.mark.parametrize("key", ["google/vit-base-patch16-224", "facebook/deit-small-patch16-224"])
def test_transformers_pipeline_reference_agreement(key, model_caches, service, photo):
    from transformers import pipeline

    classify = pipeline("image-classification", model=key, device="cpu")
    ref = classify(Image.open(photo), top_k=5)
    ours = service.classify(photo, key, top_k=5).prediction
    np.testing.assert_allclose([s.probability for s in ours.top], [r["score"] for r in ref], atol=1e-4)
    # the pipeline's labels are id2label's raw names; ours are the same names made unique
    assert [ours.labels[s.index].split(" (")[0] for s in ours.top] == [r["label"] for r in ref]


def test_top_k_is_clamped_to_the_class_count(service, photo):
    assert len(service.classify(photo, "squeezenet1_1", top_k=5000).prediction.top) == 1000
    assert len(service.classify(photo, "squeezenet1_1", top_k=0).prediction.top) == 1


def test_device_auto_picks_cpu_without_cuda():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


# --- faults -----------------------------------------------------------------------------------
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr("torch.hub.download_url_to_file", refuse)


def test_missing_torchvision_weights_say_what_to_do(monkeypatch, tmp_path, photo):
    _no_network(monkeypatch)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    service = ClassificationService(resolve_settings(device="cpu"))
    with pytest.raises(WeightsUnavailableError) as err:
        service.classify(photo, "resnet18")
    message = str(err.value)
    assert "python -m dashboard download resnet18" in message
    assert str(tmp_path) not in message and str(tmp_path) in err.value.detail  # the path: operator only
    assert not service.is_loaded("resnet18")


def test_corrupt_weights_fail_cleanly_and_the_next_request_retries(monkeypatch, tmp_path, photo):
    _no_network(monkeypatch)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = random_weights.write_torchvision_checkpoint("squeezenet1_1", tmp_path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # truncated download
    service = ClassificationService(resolve_settings(device="cpu"))
    with pytest.raises(WeightsUnavailableError, match="damaged"):
        service.classify(photo, "squeezenet1_1")
    path.write_bytes(good)
    assert not service.classify(photo, "squeezenet1_1").load.cached


def test_missing_hub_model_explains_offline_cache(service, photo):
    with pytest.raises(WeightsUnavailableError) as err:
        service.classify(photo, "someone/not-cached-vit")
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message and "python -m dashboard download someone/not-cached-vit" in message


def test_a_text_model_is_refused_as_not_an_image_classifier(model_caches, service, photo):
    hub_config("acme/tiny-bert", {"model_type": "bert", "architectures": ["BertForMaskedLM"]})
    with pytest.raises(NotAnImageClassifierError, match="'bert' model, not an image classifier"):
        service.classify(photo, "acme/tiny-bert")


def test_remote_code_is_never_trusted(model_caches, service, photo):
    hub_config("acme/custom-code", {
        "model_type": "acme_custom",
        "auto_map": {"AutoConfig": "configuration_acme.AcmeConfig"},
    })
    with pytest.raises(ModelRefusedError):
        service.classify(photo, "acme/custom-code")


def test_custom_models_over_the_size_cap_are_refused_before_loading(model_caches, photo):
    random_weights.write_hub_checkpoint("acme/small-vit", HF_HOME, tiny=True)
    capped = ClassificationService(resolve_settings(device="cpu", max_model_params=1000))
    with pytest.raises(ModelRefusedError, match="at most"):
        capped.classify(photo, "acme/small-vit")
    roomy = ClassificationService(resolve_settings(device="cpu"))
    assert roomy.classify(photo, "acme/small-vit").info.num_classes == 1000


def test_local_checkpoint_directory_loads(model_caches, photo):
    snapshot = random_weights.write_hub_checkpoint("acme/local-vit", HF_HOME, tiny=True)
    service = ClassificationService(resolve_settings(device="cpu"), origin="cli")
    result = service.classify(photo, str(snapshot))
    assert result.info.weights_id == os.path.realpath(snapshot)
    assert len(result.prediction.top) == 3


def test_custom_ids_refused_when_turned_off(model_caches, photo):
    locked = ClassificationService(resolve_settings(device="cpu", allow_custom_models=False))
    with pytest.raises(ModelRefusedError, match="turned off"):
        locked.classify(photo, "acme/small-vit")


def test_an_exception_inside_the_model_is_curated_and_the_next_call_works(model_caches, photo):
    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=0))
    classifier, _ = service.model("squeezenet1_1")
    real_forward = classifier.model.forward
    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_forward(x)

    classifier.model.forward = flaky
    with pytest.raises(InferenceError, match="SqueezeNet 1.1 failed on this image"):
        service.classify(photo, "squeezenet1_1")
    assert len(service.classify(photo, "squeezenet1_1").prediction.top) == 3


def test_memory_budget_evicts_least_recently_used(model_caches, photo):
    # squeezenet1_1 holds ~4.7 MiB of weights, resnet18 ~44.6 MiB: 45 MiB holds one of them
    service = ClassificationService(resolve_settings(device="cpu", memory_budget_mb=45, result_cache_size=0))
    service.classify(photo, "squeezenet1_1")
    service.classify(photo, "resnet18")
    assert service.cache.loaded_keys() == ["resnet18"]
    assert not service.classify(photo, "squeezenet1_1").load.cached


def test_result_cache_answers_identical_repeats(model_caches, photo):
    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=2))
    first = service.classify(photo, "squeezenet1_1", top_k=3)
    again = service.classify(photo, "squeezenet1_1", top_k=3)
    assert again.repeated and again.prediction is first.prediction
    service.classify(photo, "resnet18", top_k=3)
    service.classify(photo.with_name("coffee.jpg"), "resnet18", top_k=3)
    assert not service.classify(photo, "squeezenet1_1", top_k=3).repeated  # evicted: size 2


def test_another_top_k_is_sliced_from_the_cached_distribution(model_caches, photo, monkeypatch):
    """A top-k change needs no new forward pass: the result cache is keyed by image and model, and
    the k classes come from the full distribution it keeps, the same as a fresh run's."""
    service = ClassificationService(resolve_settings(device="cpu"))
    first = service.classify(photo, "squeezenet1_1", top_k=3)
    forwards = []
    classifier, _ = service.model("squeezenet1_1")
    original = classifier.forward
    monkeypatch.setattr(classifier, "forward", lambda batch: forwards.append(1) or original(batch))
    five = service.classify(photo, "squeezenet1_1", top_k=5)
    assert five.repeated and not forwards
    assert [s.label for s in five.prediction.top[:3]] == [s.label for s in first.prediction.top]
    assert len(five.prediction.top) == 5 and five.prediction.top[3].probability >= five.prediction.top[4].probability
    fresh = ClassificationService(resolve_settings(device="cpu", result_cache_size=0)).classify(photo, "squeezenet1_1", top_k=5)
    assert [(s.index, round(s.probability, 6)) for s in five.prediction.top] == \
        [(s.index, round(s.probability, 6)) for s in fresh.prediction.top]


def test_errors_are_dashboard_errors():
    assert issubclass(WeightsUnavailableError, ModelError)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and str(TORCH_HOME) == os.environ["TORCH_HOME"]
