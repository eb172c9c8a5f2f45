"""One failing model never blanks a comparison (issue 9, item 1): each slot has its own result
or its own error; the tables and chart hold the models that worked; the CSV says who failed."""

from __future__ import annotations

import csv
import urllib.error

import pytest

from dashboard.service import Classification, ModelFailure


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("no network (test)")


@pytest.fixture
def no_downloads(monkeypatch):
    """Weights that are not in the test caches fail at once, as offline, instead of downloading."""
    monkeypatch.setattr("torch.hub.download_url_to_file", _no_network)


def test_classify_each_keeps_the_good_answers_beside_a_failure(service, photo, no_downloads):
    from dashboard.errors import DashboardError, ImageInputError

    good, bad = service.classify_each(photo, ["resnet18", "resnet50"], top_k=3)
    assert isinstance(good, Classification) and good.info.key == "resnet18"
    assert isinstance(bad, ModelFailure) and bad.display_name == "ResNet-50" and bad.runtime == "pytorch"
    assert "python -m dashboard download resnet50" in bad.message and "/" not in bad.message.split("download")[0]
    with pytest.raises(DashboardError):  # the old callers' way: the first failure raised
        service.compare_models(photo, ["resnet18", "resnet50"], top_k=3)
    with pytest.raises(ImageInputError):  # a bad image is every model's error, not one slot's
        service.classify_each(b"not an image", ["resnet18", "resnet50"], filename="x.png")


def test_compare_shows_each_slot_and_the_tables_of_the_models_that_worked(client, photo, no_downloads):
    from gradio_client import handle_file

    *slots, latency, agreement, chart, csv_path = client.predict(
        handle_file(str(photo)), ["resnet18", "resnet50"], 3, api_name="/compare")
    good, bad, hidden_a, hidden_b = slots
    assert good["label"].startswith("ResNet-18") and good["value"]["confidences"]
    assert bad["label"].startswith("ResNet-50 — failed: ") and "download resnet50" in bad["label"]
    assert not (bad.get("value") or {}).get("confidences")  # no stale or made-up answer in the failed slot
    assert bad["visible"] and not hidden_a["visible"] and not hidden_b["visible"]
    models = latency["headers"].index("model")
    assert [row[models] for row in latency["data"]] == ["ResNet-18"]
    assert agreement["data"] == []  # one model worked: no pair to compare
    # "(cached)" when an earlier test of the session already asked the same (its times are earlier ones)
    assert {row[0].removesuffix(" (cached)") for row in chart["value"]["data"]} == {"ResNet-18"}
    with open(csv_path["value"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["status"]) for r in rows] == [("ResNet-18", "ok"), ("ResNet-50", "failed")]
    assert rows[0]["reason"] == "" and "download resnet50" in rows[1]["reason"]


def test_compare_where_every_model_fails_says_why(client, photo, no_downloads):
    from gradio_client import handle_file

    from conftest import app_error

    with app_error("python -m dashboard download resnet50"):
        client.predict(handle_file(str(photo)), ["resnet50", "resnet34"], 3, api_name="/compare")
