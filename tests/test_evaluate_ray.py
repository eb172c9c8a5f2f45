"""The Ray Data engine (a local Ray instance, 2 CPUs) gives the same numbers as the local engine."""

from __future__ import annotations

import os

import pytest

import evalkit
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings


def test_ray_engine_gives_the_same_numbers_as_the_local_engine(tmp_path):
    try:
        import ray
    except ImportError:  # requirements-dev.txt installs it (requirements-ray.txt): CI must run this
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail("ray is missing: pip install -r requirements-dev.txt", pytrace=False)
        pytest.skip("ray is missing: pip install -r requirements-ray.txt")
    folder = evalkit.labelled_folder(tmp_path / "colours")
    (folder / "red" / "broken.png").write_bytes(b"not an image")  # skipped by both, with the same reason
    service = ClassificationService(resolve_settings(device="cpu", eval_batch_size=8))
    models = [evalkit.colour_classifier(), evalkit.colour_classifier("swapped", ("green", "red", "blue", "yellow"))]
    local = service.evaluate(folder, models)
    seen = []
    distributed = service.evaluate(folder, models, engine="ray", progress=seen.append)
    assert distributed.engine == "ray" and local.engine == "local"
    assert not ray.is_initialized()  # the local instance it started is shut down
    assert distributed.images == local.images == 40 and seen[-1].done == 41
    for a, b in zip(local.models, distributed.models):
        assert (a.key, a.top1, a.top5, a.per_class, a.confusions) == (b.key, b.top1, b.top5, b.per_class, b.confusions)
        assert a.top1_ci == b.top1_ci and a.unmatched_classes == b.unmatched_classes
    evalkit_check = local.models[0]
    assert evalkit_check.top1 == 37 and evalkit_check.per_class["red"] == (10, 8)
    assert distributed.predictions == local.predictions
    assert [(d.differ, d.images) for d in distributed.disagreements] == [(d.differ, d.images) for d in local.disagreements]
    assert distributed.skipped == local.skipped and "not a readable PNG" in dict(local.skipped)["red/broken.png"]
    assert [g.name for g in distributed.gallery] == [g.name for g in local.gallery]
