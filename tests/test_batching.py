"""Concurrent requests for one model share a forward pass, and get the same answers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from dashboard.errors import InferenceError
from dashboard.models.batching import BatchRunner
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings


def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 255, (120 + i, 160, 3), dtype=np.uint8)) for i in range(n)]


def _slow_first_forward(classifier, delay=0.5):
    """Hold the first forward pass so that the next requests queue up behind it."""
    real = classifier.forward
    first = threading.Event()

    def forward(batch):
        if not first.is_set():
            first.set()
            time.sleep(delay)
        return real(batch)

    classifier.forward = forward
    return real


def test_overlapping_requests_are_batched_with_identical_results(model_caches):
    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=0, max_batch_size=8))
    images = _images(8)
    sequential = [service.classify(img, "squeezenet1_1", top_k=5).prediction for img in images]
    assert {p.batch_size for p in sequential} == {1}

    classifier, _ = service.model("squeezenet1_1")
    real = _slow_first_forward(classifier)
    results: list = [None] * len(images)

    def ask(i):
        results[i] = service.classify(images[i], "squeezenet1_1", top_k=3 + i % 3).prediction

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    classifier.forward = real
    assert max(p.batch_size for p in results) > 1  # merged into a shared forward pass
    for i, (alone, together) in enumerate(zip(sequential, results)):
        assert len(together.top) == 3 + i % 3  # each request keeps its own top-k
        assert [s.index for s in together.top] == [s.index for s in alone.top[: len(together.top)]]
        np.testing.assert_allclose(together.probabilities, alone.probabilities, atol=1e-5)


def test_an_error_reaches_every_request_of_the_batch_and_the_runner_recovers(model_caches):
    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=0))
    classifier, _ = service.model("squeezenet1_1")
    real = classifier.forward
    gate = threading.Event()

    def broken(batch):
        gate.wait(2)
        raise RuntimeError("simulated failure")

    classifier.forward = broken
    errors = []

    def ask(img):
        try:
            service.classify(img, "squeezenet1_1")
        except InferenceError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(img,)) for img in _images(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert len(errors) == 4 and all("simulated failure" in str(e.__cause__) for e in errors)
    assert all("simulated failure" not in str(e) for e in errors)  # internals stay in the log
    classifier.forward = real
    assert len(service.classify(_images(1)[0], "squeezenet1_1").prediction.top) == 3


def test_idle_workers_exit():
    runner = BatchRunner(max_batch=4, slots=1, idle_s=0.05)

    class Fake:
        info = type("Info", (), {"key": "fake"})()

        def predict(self, batch, top_ks, pre):
            return [f"p{k}" for k in top_ks]

    import torch

    assert runner.run(Fake(), torch.zeros(1, 3), 2, 0.0) == "p2"
    assert runner.worker_count() == 1
    deadline = time.monotonic() + 5
    while runner.worker_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.worker_count() == 0
    assert runner.run(Fake(), torch.zeros(1, 3), 1, 0.0) == "p1"  # a new worker starts


def test_batch_size_setting_is_validated():
    with pytest.raises(ValueError):
        resolve_settings(env={}, max_batch_size=0)
