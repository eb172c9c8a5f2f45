"""Faults on the server side: broken weights, a failing model, a full queue. Each gets a clear
answer for the request it hits, and the next request works again."""

from __future__ import annotations

import re
import threading
import time
import urllib.error

import pytest
from gradio_client.utils import QueueError

from conftest import app_error
from dashboard.models.registry import get_spec
from dashboard.models.torchvision_backend import checkpoint_path
from tests import imagegen as gen

BROKEN, SPARE = "resnet18", "squeezenet1_1"
VIT = "facebook/deit-tiny-patch16-224"
FAULT_MESSAGES = {
    "missing": r"Weights for ResNet-18 are not in the torch cache .*`python -m dashboard download resnet18",
    "corrupt": r"The weights file for ResNet-18 at .* is damaged or does not match the model",
}


def classify(client, image, key: str = SPARE):
    label, _, card = client.predict(image, key, 3, api_name="/classify_resnet")
    assert len(label["confidences"]) == 3
    return card


@pytest.mark.parametrize("fault", FAULT_MESSAGES)
def test_broken_weights_fail_that_model_only_and_the_next_request_retries(
    fault, launch_app, upload, tmp_path, monkeypatch
):
    good = {key: checkpoint_path(get_spec(key)).read_bytes() for key in (BROKEN, SPARE)}  # session caches

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr("torch.hub.download_url_to_file", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # torch.hub reads it at each call
    broken, spare = checkpoint_path(get_spec(BROKEN)), checkpoint_path(get_spec(SPARE))
    spare.parent.mkdir(parents=True)
    spare.write_bytes(good[SPARE])
    if fault == "corrupt":
        broken.write_bytes(good[BROKEN][: len(good[BROKEN]) // 3])  # an interrupted download
    app = launch_app()
    image = upload("noise.png", gen.noisy("PNG", (32, 32), seed=7))

    with app_error(FAULT_MESSAGES[fault]):
        classify(app.client, image, BROKEN)
    # in a comparison: the same message, in that model's slot only; the other model's answer stays
    out = app.client.predict(image, [SPARE, BROKEN], 3, api_name="/compare")
    assert out[0]["value"]["confidences"] and not out[1].get("value")
    assert re.search(FAULT_MESSAGES[fault], out[1]["label"])
    classify(app.client, image, SPARE)  # the other models keep working
    label, _, _ = app.client.predict(image, VIT, "", 3, api_name="/classify_vit")
    assert len(label["confidences"]) == 3

    broken.write_bytes(good[BROKEN])  # the operator puts the right file in place
    assert "(first use)" in classify(app.client, image, BROKEN)  # no restart needed: the load is retried


def test_an_exception_inside_a_model_is_curated_and_the_next_request_works(
    client, running_app, upload, monkeypatch
):
    classifier, _ = running_app.service.model(SPARE)
    real_forward = classifier.model.forward
    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_forward(batch)

    monkeypatch.setattr(classifier.model, "forward", flaky)
    with app_error(r"SqueezeNet 1\.1 failed on this image\. Try another image or model") as err:
        classify(client, upload("a.png", gen.noisy("PNG", (32, 32), seed=11)))
    assert "CUDA" not in str(err.value)  # the exception's text stays in the server log
    classify(client, upload("b.png", gen.noisy("PNG", (32, 32), seed=12)))
    assert len(calls) == 2


def test_a_full_queue_answers_busy_and_the_server_recovers(launch_app, upload, monkeypatch):
    # One request runs at a time and two may wait; the running one is held until the test says.
    app = launch_app(queue_max_size=2, workers=1, max_batch_size=1)
    classifier, _ = app.demo.service.model(SPARE)
    real_forward, release = classifier.forward, threading.Event()

    def held(batch):
        release.wait(timeout=60)
        return real_forward(batch)

    monkeypatch.setattr(classifier, "forward", held)
    images = [upload(f"img-{i}.png", gen.noisy("PNG", (32, 32), seed=100 + i)) for i in range(8)]
    jobs = [app.client.submit(image, SPARE, 3, api_name="/classify_resnet") for image in images]
    deadline = time.monotonic() + 60
    while sum(job.done() for job in jobs) < len(jobs) - 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # at most 3 are accepted, so the others are answered while the first is held
    release.set()
    answered, busy = [], []
    for job in jobs:
        try:
            answered.append(job.result(timeout=60))
        except QueueError as exc:
            busy.append(str(exc))
    assert len(busy) >= len(jobs) - 3 and set(busy) == {"Queue is full! Please try again."}
    assert answered and all(len(label["confidences"]) == 3 for label, _, _ in answered)  # accepted: complete

    monkeypatch.undo()
    classify(app.client, upload("later.png", gen.noisy("PNG", (32, 32), seed=99)))
