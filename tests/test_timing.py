"""Issue 9 item 4: cached answers marked as earlier measurements, and a fair timing (warm-up, N
runs, median and spread) through the core, the service, the app (gradio_client, plain HTTP) and the CLI."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import threading
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pytest
from gradio_client import handle_file

from conftest import app_error
from dashboard.compare import CACHED_SUFFIX, LATENCY_COLUMNS, MEASURED_EARLIER, MEASURED_NOW
from dashboard.errors import ImageInputError, InvalidRequestError, UnknownModelError
from dashboard.models.classifier import ModelInfo
from dashboard.timing import (
    STAGES,
    TIMING_COLUMNS,
    TOTAL,
    Spread,
    check_runs,
    time_classifier,
    timing_table,
)
from tests import imagegen as gen

RANGE = "must be a whole number from 3 to 50"


def _rows(table: dict) -> pd.DataFrame:
    return pd.DataFrame(table["data"], columns=table["headers"])


# --- the statistics, with stage times we choose -----------------------------------------------
class FakeClock:
    """perf_counter for tests: time moves only when a fake stage says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += ms / 1e3


class ScriptedClassifier:
    """A classifier whose stages take the durations listed per run (run 0 is the warm-up)."""

    def __init__(self, clock: FakeClock, durations: dict[str, list[float]]) -> None:
        self.clock, self.durations = clock, durations
        self.info = ModelInfo("fake", "Fake-Net", "torchvision", 1000, 4000, (224, 224), "w", 10)
        self.device, self.device_label = SimpleNamespace(type="cpu"), "cpu"
        self.calls = {stage: 0 for stage in STAGES}

    def _stage(self, stage: str) -> None:
        self.clock.advance_ms(self.durations[stage][self.calls[stage]])
        self.calls[stage] += 1

    def preprocess(self, images):
        assert len(images) == 1  # batch 1, always
        self._stage("preprocess")
        return "batch"

    def forward(self, batch):
        self._stage("forward")
        return "logits"

    def postprocess(self, logits, top_k):
        self._stage("postprocess")
        return []


def test_spread_is_the_median_the_quartiles_and_the_range():
    s = Spread.of([4.0, 1.0, 100.0, 3.0, 2.0])
    assert (s.median_ms, s.q1_ms, s.q3_ms, s.min_ms, s.max_ms) == (3.0, 2.0, 4.0, 1.0, 100.0)
    assert s.iqr_ms == 2.0  # one slow outlier moves the max, not the median or the IQR
    even = Spread.of([10.0, 20.0, 30.0, 40.0])
    assert even.median_ms == 25.0 and even.iqr_ms == pytest.approx(np.percentile([10, 20, 30, 40], 75)
                                                                   - np.percentile([10, 20, 30, 40], 25))


def test_the_warm_up_run_is_left_out_and_each_stage_is_summarised():
    clock = FakeClock()
    durations = {"preprocess": [900.0, 2.0, 2.0, 2.0, 2.0, 2.0],   # the warm-up is slow: left out
                 "forward": [5000.0, 10.0, 50.0, 20.0, 40.0, 30.0],
                 "postprocess": [7.0, 1.0, 1.0, 1.0, 1.0, 6.0]}
    fake = ScriptedClassifier(clock, durations)
    timing = time_classifier(fake, object(), 5, clock=clock)
    assert fake.calls == {"preprocess": 6, "forward": 6, "postprocess": 6}  # 1 warm-up + 5 timed
    assert timing.runs == 5 and timing.warmup_ms == pytest.approx(5907.0)
    assert timing.samples["forward"] == pytest.approx((10.0, 50.0, 20.0, 40.0, 30.0))
    forward = timing.spread("forward")
    assert (forward.median_ms, forward.iqr_ms, forward.min_ms, forward.max_ms) == pytest.approx((30, 20, 10, 50))
    assert timing.spread("preprocess").iqr_ms == pytest.approx(0.0)
    # the total is per run (13, 53, 23, 43, 38): its median is not the sum of the stage medians
    assert timing.samples[TOTAL] == pytest.approx((13.0, 53.0, 23.0, 43.0, 38.0))
    assert timing.spread(TOTAL).median_ms == pytest.approx(38.0)
    table = timing_table([timing])
    assert list(table.columns) == list(TIMING_COLUMNS)
    assert list(table["stage"]) == [*STAGES, TOTAL] and set(table["runs"]) == {5}
    row = table.set_index("stage").loc["forward"]
    assert (row["median ms"], row["IQR ms"], row["min ms"], row["max ms"]) == (30.0, 20.0, 10.0, 50.0)
    record = timing.record()
    assert record["stages_ms"]["total"]["median"] == 38.0 and len(record["samples_ms"]["forward"]) == 5
    json.dumps(record)  # JSON-ready


@pytest.mark.parametrize("value", [0, 2, 51, 1000, -3, 2.5, math.nan, math.inf, True, None, "abc", "10", [3]])
def test_runs_outside_the_range_or_not_whole_numbers_are_refused(value):
    with pytest.raises(InvalidRequestError, match=RANGE):
        check_runs(value, 50)


@pytest.mark.parametrize("value, runs", [(3, 3), (50, 50), (10.0, 10)])
def test_runs_in_the_range_are_accepted(value, runs):
    assert check_runs(value, 50) == runs


def test_the_maximum_is_a_setting(model_caches, photo):
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    service = ClassificationService(resolve_settings(device="cpu", max_timing_runs=5))
    with pytest.raises(InvalidRequestError, match="from 3 to 5, not 6"):
        service.time_models(photo, ["squeezenet1_1"], 6)
    assert service.cache.loaded_keys() == []  # refused before any model loads
    with pytest.raises(ValueError, match="max_timing_runs"):
        resolve_settings(env={"DASHBOARD_MAX_TIMING_RUNS": "2"})
    assert resolve_settings(env={"DASHBOARD_MAX_TIMING_RUNS": "200"}).max_timing_runs == 200


# --- the service: real forwards, no result cache, no batcher, one forward slot ---------------
def test_each_timed_run_is_a_real_forward_outside_the_caches(service, photo, monkeypatch):
    classifier, _ = service.model("squeezenet1_1")
    service.classify(photo, "squeezenet1_1")  # the answer is now in the result cache
    forwards, held = [], []
    real_forward, real_slot = classifier.forward, service._batches.slot

    def counting_forward(batch):
        forwards.append(tuple(batch.shape))
        assert held, "a timed forward ran without holding a forward slot"
        return real_forward(batch)

    @contextlib.contextmanager
    def watched_slot():
        with real_slot():
            held.append(True)
            try:
                yield
            finally:
                held.pop()

    def no_batcher(*args, **kwargs):
        raise AssertionError("fair timing went through the cross-request batcher")

    def no_result_cache(*args, **kwargs):
        raise AssertionError("fair timing asked the result cache")

    monkeypatch.setattr(classifier, "forward", counting_forward)
    monkeypatch.setattr(service._batches, "slot", watched_slot)
    monkeypatch.setattr(service._batches, "run", no_batcher)
    monkeypatch.setattr(service._batches, "run_many", no_batcher)
    monkeypatch.setattr(service, "_recall", no_result_cache)
    (first,) = service.time_models(photo, ["squeezenet1_1"], 4)
    assert len(forwards) == 1 + 4 and set(forwards) == {(1, 3, 224, 224)}  # warm-up + 4, batch 1
    (second,) = service.time_models(photo, ["squeezenet1_1"], 3)
    assert len(forwards) == 1 + 4 + 1 + 3  # asked again: measured again, never remembered
    assert first.runs == 4 and second.runs == 3 and first.device == "cpu"
    assert all(ms > 0 for ms in first.samples["forward"])
    assert first.samples["forward"] != second.samples["forward"][:4]


def test_time_models_refuses_before_loading(service, photo, tmp_path):
    with pytest.raises(InvalidRequestError, match="between 1 and 4 models"):
        service.time_models(photo, [], 3)
    with pytest.raises(InvalidRequestError, match="between 1 and 4 models"):
        service.time_models(photo, ["resnet18", "resnet34", "resnet50", "squeezenet1_0", "squeezenet1_1"], 3)
    with pytest.raises(UnknownModelError):
        service.time_models(photo, ["resnet19"], 3)
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\x00not an image" * 40)
    with pytest.raises(ImageInputError, match="not a readable JPEG"):
        service.time_models(bad, ["resnet34"], 3)
    assert not service.is_loaded("resnet34")  # the image was refused first


def test_the_forward_slot_holds_back_batched_forwards(service, photo):
    """While a timing holds the (only) slot, a batched request waits; it runs once the slot is free."""
    from dashboard.models.batching import BatchRunner

    classifier, _ = service.model("squeezenet1_1")
    runner = BatchRunner(slots=1)
    batch, pre_ms = classifier.timed_preprocess([service._checked_image(photo.read_bytes(), photo.name).image])
    done = threading.Event()
    with runner.slot():
        worker = threading.Thread(target=lambda: (runner.run(classifier, batch, 1, pre_ms), done.set()))
        worker.start()
        assert not done.wait(0.5)  # no forward while the slot is held
    worker.join(timeout=60)
    assert done.is_set()


# --- the app: marking cached answers ----------------------------------------------------------
def _unique_image(upload, name: str, seed: int):
    return upload(name, gen.noisy("PNG", (64, 48), seed=seed))


def test_a_repeated_comparison_says_its_times_are_from_earlier(client, upload):
    import csv

    image = _unique_image(upload, "repeat.png", 9041)
    keys = ["resnet18", "squeezenet1_1"]
    first = client.predict(image, keys, 3, api_name="/compare")
    second = client.predict(image, keys, 3, api_name="/compare")
    lat1, lat2 = _rows(first[4]), _rows(second[4])
    assert list(lat2.columns) == list(LATENCY_COLUMNS)
    assert list(lat1["measured"]) == [MEASURED_NOW] * 2
    assert list(lat2["measured"]) == [MEASURED_EARLIER] * 2 and list(lat2["load"]) == ["result cache"] * 2
    # the repeated times are the first request's, shown as such
    assert list(lat2["total ms"]) == list(lat1["total ms"])
    names1 = list(dict.fromkeys(row[0] for row in first[6]["value"]["data"]))
    names2 = list(dict.fromkeys(row[0] for row in second[6]["value"]["data"]))
    assert names1 == ["ResNet-18", "SqueezeNet 1.1"]
    assert names2 == [n + CACHED_SUFFIX for n in names1]  # one x value per model, marked
    path = second[7]["value"]  # an update: the file, and the button enabled
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["measured"] for r in rows] == [MEASURED_EARLIER] * 2


def test_the_single_model_stage_table_marks_a_repeat(client, upload):
    image = _unique_image(upload, "single.png", 9042)
    _, fresh, card = client.predict(image, "squeezenet1_1", 3, api_name="/classify_resnet")
    _, repeat, repeat_card = client.predict(image, "squeezenet1_1", 3, api_name="/classify_resnet")
    assert _rows(fresh).loc[0, "measured"] == MEASURED_NOW
    assert _rows(repeat).loc[0, "measured"] == MEASURED_EARLIER
    assert "result cache" in repeat_card and "earlier request" in repeat_card


def test_the_latency_help_explains_the_column():
    from dashboard.tabs.compare import LATENCY_HELP

    assert "*measured*" in LATENCY_HELP and MEASURED_EARLIER in LATENCY_HELP and "Fair timing" in LATENCY_HELP


# --- the app: /fair_timing -----------------------------------------------------------------------
def test_fair_timing_through_gradio_client(client, photo):
    table = _rows(client.predict(handle_file(str(photo)), ["squeezenet1_1", "resnet18"], 3, ["pytorch"],
                                 api_name="/fair_timing"))
    assert list(table.columns) == list(TIMING_COLUMNS)
    assert list(table["model"]) == ["SqueezeNet 1.1"] * 4 + ["ResNet-18"] * 4
    assert list(table["stage"]) == [*STAGES, TOTAL] * 2 and set(table["runs"]) == {3}
    assert (table["min ms"] <= table["median ms"]).all() and (table["median ms"] <= table["max ms"]).all()
    assert (table["IQR ms"] >= 0).all() and (table.loc[table["stage"] == "forward", "median ms"] > 0).all()
    assert set(table["device"]) == {"cpu"} and set(table["runtime"]) == {"pytorch"}


def test_fair_timing_parameters_have_defaults_except_the_image(client):
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/fair_timing"]
    params = {p["parameter_name"]: p for p in endpoint["parameters"]}
    assert list(params) == ["image_path", "models", "runs", "runtimes"]
    assert [name for name, p in params.items() if not p["parameter_has_default"]] == ["image_path"]
    assert params["runs"]["parameter_default"] == 10 and params["models"]["parameter_default"] == [
        "resnet18", "google/vit-base-patch16-224"] and params["runtimes"]["parameter_default"] == ["pytorch"]


@pytest.mark.parametrize("runs, shown", [(0, "not 0"), (1000, "not 1000"), ("abc", "not 'abc'"), (2.5, "not 2.5")])
def test_fair_timing_refuses_bad_runs_through_gradio_client(client, photo, runs, shown):
    with app_error(f"{RANGE}, {shown}"):
        client.predict(handle_file(str(photo)), ["squeezenet1_1"], runs, ["pytorch"], api_name="/fair_timing")


def _data_url(raw: bytes) -> dict:
    return {"url": "data:image/png;base64," + base64.b64encode(raw).decode(), "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("runs", [0, 1000, "abc", None, {"x": 1}])
def test_fair_timing_refuses_bad_runs_through_plain_http(app_url, runs):
    event = httpx.post(f"{app_url}gradio_api/call/fair_timing", timeout=60,
                       json={"data": [_data_url(gen.noisy("PNG", (32, 32))), ["squeezenet1_1"], runs, ["pytorch"]]})
    assert event.status_code == 200
    text = httpx.get(f"{app_url}gradio_api/call/fair_timing/{event.json()['event_id']}", timeout=120).text
    assert "event: error" in text and RANGE in text
    assert "/tmp" not in text and "Traceback" not in text  # no server paths, no stack


def test_fair_timing_through_plain_http(app_url):
    event = httpx.post(f"{app_url}gradio_api/call/fair_timing", timeout=60,
                       json={"data": [_data_url(gen.noisy("PNG", (32, 32))), ["squeezenet1_1"], 3, ["pytorch"]]})
    text = httpx.get(f"{app_url}gradio_api/call/fair_timing/{event.json()['event_id']}", timeout=120).text
    assert "event: complete" in text
    data = json.loads(text.rsplit("data:", 1)[-1].strip())
    assert data[0]["headers"] == list(TIMING_COLUMNS) and len(data[0]["data"]) == 4


@pytest.mark.parametrize("models, message", [([], "between 1 and 4"), (["resnet19"], "resnet19 is not in the list")])
def test_fair_timing_refuses_bad_model_choices(client, photo, models, message):
    with app_error(message):
        client.predict(handle_file(str(photo)), models, 3, ["pytorch"], api_name="/fair_timing")


def test_fair_timing_asks_for_an_image(client):
    with app_error("Upload an image first"):
        client.predict(None, ["squeezenet1_1"], 3, ["pytorch"], api_name="/fair_timing")


def test_a_new_image_model_or_runtime_clears_the_timing_table(running_app):
    config = running_app.config
    by_elem = {c["props"].get("elem_id"): c["id"] for c in config["components"] if c.get("props")}
    table = by_elem["compare-timing-table"]
    clearing = [d for d in config["dependencies"] if d["outputs"] == [table] and d.get("api_name") != "fair_timing"]
    triggers = {tuple(target) for d in clearing for target in d["targets"]}
    assert (by_elem["shared-image"], "upload") in triggers  # a new image (see tabs.autorun.on_new_image)
    for elem in ("compare-models", "compare-runtime"):
        assert (by_elem[elem], "change") in triggers
    assert all(d["api_visibility"] == "private" for d in clearing)


# --- the command line ----------------------------------------------------------------------------
def test_cli_time_json(model_caches, photo):
    from test_cli import run

    out = run("time", str(photo), "--models", "squeezenet1_1", "--runs", "3", "--json", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    (record,) = json.loads(out.stdout)
    assert record["model"] == "squeezenet1_1" and record["runs"] == 3 and record["device"] == "cpu"
    assert set(record["stages_ms"]) == {*STAGES, TOTAL}
    assert all(len(v) == 3 for v in record["samples_ms"].values())
    total = record["stages_ms"]["total"]
    assert total["min"] <= total["median"] <= total["max"] and isinstance(total["iqr"], float)


def test_cli_time_text(model_caches, photo):
    from test_cli import run

    out = run("time", str(photo), "--model", "squeezenet1_1", "--model", "resnet18", "--runs", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("one warm-up run") == 2 and "then 3 timed runs of batch 1" in out.stdout
    assert sum(line.lstrip().startswith(("preprocess", "forward", "postprocess", "total"))
               for line in out.stdout.splitlines()) == 8


@pytest.mark.parametrize("args, code, message", [
    (["--runs", "0"], 1, "from 3 to 50, not 0"),
    (["--runs", "abc"], 2, "'abc' is not a whole number"),
    (["--models", "resnet19"], 1, "Unknown model 'resnet19'"),
])
def test_cli_time_refusals(model_caches, photo, args, code, message):
    from test_cli import run

    out = run("time", str(photo), *args)
    assert out.returncode == code and message in out.stderr and "Traceback" not in out.stderr


def test_cli_time_names_a_missing_file(tmp_path):
    from test_cli import run

    out = run("time", str(tmp_path / "missing.png"))
    assert out.returncode == 1 and "missing.png: no such file" in out.stderr


def test_time_models_on_another_runtime(service, photo):
    """A "KEY@RUNTIME" choice is timed on that runtime (here ONNX Runtime, exported on first use)."""
    onnx, torch_run = service.time_models(photo, ["squeezenet1_1@onnxruntime", "squeezenet1_1"], 3)
    assert (onnx.info.runtime, torch_run.info.runtime) == ("onnxruntime", "pytorch")
    assert onnx.runs == 3 and all(ms > 0 for ms in onnx.samples["forward"])
    assert list(timing_table([onnx, torch_run])["runtime"]) == ["onnxruntime"] * 4 + ["pytorch"] * 4
