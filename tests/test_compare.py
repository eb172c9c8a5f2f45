"""Agreement metrics and the latency table, on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.compare import (
    AGREEMENT_COLUMNS,
    CHART_COLUMNS,
    LATENCY_COLUMNS,
    agreement_table,
    js_divergence,
    latency_chart_data,
    latency_table,
    same_label_space,
)
from dashboard.models.cache import LoadInfo
from dashboard.models.classifier import ClassScore, ModelInfo, Prediction, StageTimes
from dashboard.service import Classification


def _result(name, probs, labels, k=2, load=LoadInfo(False, 1234.0), repeated=False):
    probs = np.asarray(probs, dtype=np.float32)
    order = np.argsort(-probs)[:k]
    top = tuple(ClassScore(int(i), labels[i], float(probs[i])) for i in order)
    info = ModelInfo(name, name, "torchvision", 1_500_000, 6_000_000, (224, 224), "w", len(labels))
    pred = Prediction(name, top, probs, tuple(labels), StageTimes(1.25, 10.0, 0.5), 1_500_000, "cpu")
    return Classification(pred, info, load, repeated)


def test_js_divergence_bounds():
    p = np.array([0.5, 0.5, 0.0, 0.0])
    assert js_divergence(p, p) == pytest.approx(0.0)
    assert js_divergence(p, np.array([0.0, 0.0, 0.5, 0.5])) == pytest.approx(1.0)  # disjoint, in bits
    q = np.array([0.25, 0.25, 0.25, 0.25])
    assert 0 < js_divergence(p, q) < 1
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p))


def test_label_spaces_match_across_synonyms_but_not_across_sizes():
    torchvision_style = ["tench", "goldfish", "crane bird", "crane"]
    hub_style = ["tench, Tinca tinca", "goldfish, Carassius auratus", "crane (2)", "crane (3)"]
    assert not same_label_space(torchvision_style, hub_style)  # 1 of 4 differs: below 99 %
    assert same_label_space(hub_style, ["tench", "goldfish", "crane", "crane"])
    assert not same_label_space(["a", "b"], ["a", "b", "c"])


def test_agreement_when_label_sets_are_the_same():
    labels = ["cat", "dog", "fox", "owl"]
    a = _result("A", [0.6, 0.3, 0.05, 0.05], labels)
    b = _result("B", [0.5, 0.1, 0.35, 0.05], labels)
    c = _result("C", [0.1, 0.7, 0.1, 0.1], labels)
    table = agreement_table([a, b, c])
    assert list(table.columns) == list(AGREEMENT_COLUMNS) and len(table) == 3
    ab = table.iloc[0]
    assert (ab["model A"], ab["model B"], bool(ab["top-1 agree"]), ab["top-k overlap"]) == ("A", "B", True, 0.5)
    assert ab["JS divergence"] == pytest.approx(js_divergence(a.prediction.probabilities,
                                                              b.prediction.probabilities), abs=1e-4)
    ac = table.iloc[1]
    assert not ac["top-1 agree"] and ac["top-k overlap"] == 1.0  # same two classes, other order


def test_agreement_across_label_sets_compares_names_and_skips_divergence():
    a = _result("A", [0.7, 0.2, 0.1], ["cat", "dog", "fox"])
    b = _result("B", [0.1, 0.2, 0.6, 0.1], ["dog", "tabby", "cat, house cat", "owl"])
    row = agreement_table([a, b]).iloc[0]
    assert row["top-1 agree"] and row["top-k overlap"] == 0.5
    assert row["JS divergence"] is None or np.isnan(row["JS divergence"])


def test_latency_table_rows():
    fresh = _result("A", [0.9, 0.1], ["x", "y"])
    warm = _result("B", [0.9, 0.1], ["x", "y"], load=LoadInfo(True, 0.0))
    repeat = _result("C", [0.9, 0.1], ["x", "y"], load=LoadInfo(True, 0.0), repeated=True)
    table = latency_table([fresh, warm, repeat])
    assert list(table.columns) == list(LATENCY_COLUMNS)
    assert list(table["load"]) == ["1234 ms", "cached", "result cache"]
    assert list(table["measured"]) == ["now", "now", "earlier (cached answer)"]  # C's times are a repeat
    assert list(table["total ms"]) == [11.8, 11.8, 11.8] and table.loc[0, "parameters"] == "1.5M"


def test_chart_data_has_one_row_per_model_and_stage():
    chart = latency_chart_data([_result("A", [0.9, 0.1], ["x", "y"]), _result("B", [0.2, 0.8], ["x", "y"])])
    assert list(chart.columns) == list(CHART_COLUMNS) and len(chart) == 6
    sums = chart.groupby("model")["ms"].sum()
    assert list(sums.index) == ["A", "B"] and sums.to_numpy() == pytest.approx([11.75, 11.75], abs=0.1)


def test_chart_names_a_cached_answer_as_such():
    fresh = _result("A", [0.9, 0.1], ["x", "y"])
    repeat = _result("B", [0.9, 0.1], ["x", "y"], load=LoadInfo(True, 0.0), repeated=True)
    chart = latency_chart_data([fresh, repeat])
    assert list(dict.fromkeys(chart["model"])) == ["A", "B (cached)"]  # one x value per model
