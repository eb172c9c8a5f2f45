"""Robustness through the service: perturbed answers, the result cache, sweeps and their forwards.

A model built here ("bright" when the image's mean brightness is above a threshold, else "dark")
has a known right answer, so a sweep must flip it exactly where the brightness crosses the
threshold. Real (random-init) models check the plumbing: one forward per model per sweep.
"""

from __future__ import annotations

import json
from io import BytesIO

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image

from dashboard.errors import PerturbationError
from dashboard.models.classifier import Classifier, ModelInfo
from dashboard.perturb import strengths
from dashboard.robustness import CHANGE_COLUMNS, CURVE_COLUMNS
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings

GREY = 51  # the test image's value on every channel (0.2 on a 0-1 scale)
THRESHOLDS = {"resnet18": 0.45, "squeezenet1_1": 0.52}


class MeanBrightness(torch.nn.Module):
    """Two classes, "dark" and "bright": bright when the mean pixel value is above ``threshold``."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold
        self.calls: list[int] = []  # the batch size of every forward call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        margin = (x.mean(dim=(1, 2, 3)) - self.threshold) * 40
        return torch.stack([-margin, margin], dim=1)


def _to_batch(images):
    return torch.stack([F.to_dtype(F.pil_to_tensor(F.resize(im, [16, 16])), torch.float32, scale=True)
                        for im in images])


class BrightnessZoo(ClassificationService):
    """The service with its registry keys answered by MeanBrightness models (no weights involved)."""

    def _load(self, key: str) -> Classifier:
        info = ModelInfo(key, f"bright>{THRESHOLDS[key]}", "torchvision", 0, 0, (16, 16), "test", 2)
        return Classifier(info, MeanBrightness(THRESHOLDS[key]), _to_batch, ["dark", "bright"],
                          torch.device("cpu"))


def _png(image: Image.Image) -> bytes:
    buf = BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def zoo() -> BrightnessZoo:
    service = BrightnessZoo(resolve_settings(device="cpu", max_sweep_steps=12))
    service.preload(list(THRESHOLDS))
    for key in THRESHOLDS:
        service.model(key)[0].model.calls.clear()  # forget the warm-up forward
    return service


@pytest.fixture(scope="module")
def grey() -> bytes:
    return _png(Image.new("RGB", (64, 48), (GREY,) * 3))


def test_sweep_flips_exactly_where_brightness_crosses_the_threshold(zoo, grey):
    sweep = zoo.sweep(grey, list(THRESHOLDS), "brightness", steps=8)
    levels = strengths(8)
    assert list(sweep.strengths) == levels
    assert [m.info.key for m in sweep.models] == list(THRESHOLDS)
    for model in sweep.models:
        t = THRESHOLDS[model.info.key]
        # brightness factor 1 + 2 s on a 0.2 grey: bright once 0.2 (1 + 2 s) > t
        expected = ["bright" if GREY / 255 * (1 + 2 * s) > t else "dark" for s in levels]
        assert [c.label for c in model.top1] == expected
        flip = expected.index("bright")
        assert model.first_change_step == flip and sweep.first_change(model) == levels[flip]
        assert model.clean_top1.label == "dark"
        # the clean class's probability falls as the brightness rises
        assert all(a >= b for a, b in zip(model.probabilities, model.probabilities[1:]))
        assert model.probabilities[flip - 1] > 0.5 > model.probabilities[flip]
    assert sweep.first_change(sweep.models[0]) < sweep.first_change(sweep.models[1])
    for key in THRESHOLDS:  # one forward per model, carrying all 8 strengths
        assert zoo.model(key)[0].model.calls == [8]


def test_a_model_that_never_flips_says_so(zoo, grey):
    sweep = zoo.sweep(grey, ["squeezenet1_1"], "contrast", steps=4)  # contrast keeps a uniform image's mean
    assert sweep.models[0].first_change_step is None and sweep.first_change(sweep.models[0]) is None
    table = sweep.change_frame()
    assert list(table.columns) == list(CHANGE_COLUMNS) and table.loc[0, "first change at strength"] == "never"


def test_result_cache_keeps_perturbed_and_clean_and_strengths_apart(zoo, grey):
    bright = zoo.robustness(grey, ["resnet18"], "brightness", 0.9)
    (answer,) = bright.answers
    assert answer.clean.prediction.top[0].label == "dark"
    assert answer.perturbed.prediction.top[0].label == "bright" and answer.changed
    # the clean image, asked again through the classification path, is still dark (from the cache)
    clean = zoo.classify(grey, "resnet18")
    assert clean.repeated and clean.prediction.top[0].label == "dark"
    # another strength is not answered with 0.9's result
    (dim,) = zoo.robustness(grey, ["resnet18"], "brightness", 0.2).answers
    assert not dim.perturbed.repeated and dim.perturbed.prediction.top[0].label == "dark" and not dim.changed
    # nor another perturbation at the same strength, nor another seed of the noise
    (other,) = zoo.robustness(grey, ["resnet18"], "contrast", 0.9).answers
    assert not other.perturbed.repeated
    (seeded,) = zoo.robustness(grey, ["resnet18"], "noise", 0.3, seed=1).answers
    (reseeded,) = zoo.robustness(grey, ["resnet18"], "noise", 0.3, seed=2).answers
    assert not reseeded.perturbed.repeated
    # the same request again is answered from the cache, with the same answer
    (again,) = zoo.robustness(grey, ["resnet18"], "brightness", 0.9).answers
    assert again.perturbed.repeated and again.perturbed.prediction.top[0].label == "bright"


def test_sweep_steps_are_capped_by_the_setting(zoo, grey):
    with pytest.raises(PerturbationError, match="from 2 to 12 \\(got 13\\)"):
        zoo.sweep(grey, ["resnet18"], "blur", steps=13)
    for steps in (0, 1, 1000):
        with pytest.raises(PerturbationError, match="from 2 to 12"):
            zoo.sweep(grey, ["resnet18"], "blur", steps=steps)
    with pytest.raises(PerturbationError, match="Unknown perturbation"):
        zoo.sweep(grey, ["resnet18"], "fog")
    with pytest.raises(PerturbationError, match="centred inside the image"):
        zoo.sweep(grey, ["resnet18"], "occlusion", x=2)
    with pytest.raises(PerturbationError, match="between 0 and 1"):
        zoo.robustness(grey, ["resnet18"], "blur", 1.01)
    assert all(not zoo.model(k)[0].model.calls for k in THRESHOLDS)  # refused before any forward


def test_sweep_records_are_json_and_the_curve_is_long_form(zoo, grey):
    sweep = zoo.sweep(grey, list(THRESHOLDS), "brightness", steps=3, seed=4)
    records = json.loads(json.dumps(sweep.records()))
    assert [r["model"] for r in records] == list(THRESHOLDS) and records[0]["seed"] == 4
    assert [s["value"] for s in records[0]["steps"]] == [1.0, 2.0, 3.0]  # the brightness factors
    curve = sweep.curve_frame()
    assert list(curve.columns) == list(CURVE_COLUMNS) and len(curve) == 2 * 3


# --- real (random-init) models from the session caches --------------------------------------
def test_strength_zero_gives_the_clean_prediction(service, photo):
    result = service.robustness(photo, ["resnet18"], "gaussian_noise", 0.0, seed=9)
    (answer,) = result.answers
    assert result.perturbed.strength == 0 and not answer.changed
    assert np.array_equal(answer.perturbed.prediction.probabilities, answer.clean.prediction.probabilities)
    moved = service.robustness(photo, ["resnet18"], "gaussian_noise", 0.5, seed=9).answers[0]
    assert not np.array_equal(moved.perturbed.prediction.probabilities, answer.clean.prediction.probabilities)


def test_a_sweep_makes_one_forward_call_per_model(service, photo):
    keys = ["resnet18", "facebook/deit-tiny-patch16-224"]
    service.preload(keys)
    calls: dict[str, list[int]] = {key: [] for key in keys}
    hooks = [service.model(key)[0].model.register_forward_hook(
        lambda module, args, out, key=key: calls[key].append(args[0].shape[0] if args else -1))
        for key in keys]
    try:
        sweep = service.sweep(photo, keys, "blur", steps=8, seed=1)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == {key: [8] for key in keys}
    clean = service.compare_models(photo, keys, 1)
    for model, c in zip(sweep.models, clean):
        assert model.batch_size == 8
        assert model.clean_top1.index == c.prediction.top[0].index
        assert model.probabilities[0] == pytest.approx(c.prediction.top[0].probability, abs=1e-4)


def test_a_multi_image_job_and_a_single_request_at_once_each_get_their_own_rows():
    import threading
    import time

    from dashboard.models.batching import BatchRunner

    classifier = BrightnessZoo(resolve_settings(device="cpu"))._load("resnet18")
    images = {v: Image.new("RGB", (16, 16), (v,) * 3) for v in (20, 240)}  # dark, bright
    runner = BatchRunner(max_batch=8, slots=1)
    results: dict[str, object] = {}

    def many():
        batch, ms = classifier.timed_preprocess([images[20], images[240], images[20]])
        results["many"] = [p.top[0].label for p in runner.run_many(classifier, batch, 1, ms)]

    def single():
        batch, ms = classifier.timed_preprocess([images[240]])
        results["single"] = runner.run(classifier, batch, 2, ms)

    # a forward is in progress (the slot is held): both requests queue behind it
    runner._slots.acquire()
    threads = [threading.Thread(target=many), threading.Thread(target=single)]
    threads[0].start()
    time.sleep(0.2)  # the worker has taken the first job and waits for the slot
    threads[1].start()
    time.sleep(0.2)
    runner._slots.release()
    for t in threads:
        t.join(10)
    assert results["many"] == ["dark", "bright", "dark"]
    assert [s.label for s in results["single"].top] == ["bright", "dark"]
    assert sum(classifier.model.calls) == 4 and 3 in classifier.model.calls  # the 3 rows in one forward


def test_a_large_image_is_scaled_down_before_it_is_perturbed(grey):
    service = BrightnessZoo(resolve_settings(device="cpu", perturb_max_side=64))
    big = _png(Image.new("RGB", (200, 100), (GREY,) * 3))
    result = service.robustness(big, ["resnet18"], "occlusion", 0.0)
    assert result.perturbed.image.size == (64, 32) and not result.answers[0].changed
    sweep = service.sweep(big, ["resnet18"], "blur", steps=3)
    assert {im.size for im in sweep.images} == {(64, 32)}
    # the scaled image's clean answer has its own key: the full image's classification is not it
    assert not service.classify(big, "resnet18").repeated
    assert service.perturb_preview(grey, "blur", 0.5).image.size == (64, 48)  # small enough already
