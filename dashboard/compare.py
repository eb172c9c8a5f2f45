"""Agreement between models and the latency table, both as pandas DataFrames."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from dashboard.service import Classification

LATENCY_COLUMNS = (
    "model",
    "runtime",
    "parameters",
    "load",
    "measured",
    "preprocess ms",
    "forward ms",
    "postprocess ms",
    "total ms",
    "device",
)
AGREEMENT_COLUMNS = ("model A", "model B", "top-1 agree", "top-k overlap", "JS divergence")
CHART_COLUMNS = ("model", "stage", "ms")
# The "measured" column: when the times of a row were taken. A result-cache answer repeats the
# stage times of the request that first computed it; they are shown as such, never as fresh.
MEASURED_NOW = "now"
MEASURED_EARLIER = "earlier (cached answer)"
CACHED_SUFFIX = " (cached)"  # the chart's x label of a model whose times are from an earlier request


def measured(result: Classification) -> str:
    """When ``result``'s stage times were measured: by this request, or an earlier one."""
    return MEASURED_EARLIER if result.repeated else MEASURED_NOW


def latency_table(results: Sequence[Classification]) -> pd.DataFrame:
    """One row per model: parameters, load (cold ms, "cached", or "result cache" when the whole
    answer was a repeat), when its times were measured ("now", or "earlier (cached answer)": the
    stage times of the original run), stage times, device."""
    import pandas as pd

    rows = []
    for r in results:
        t = r.prediction.times
        rows.append((
            r.info.display_name,
            getattr(r.info, "runtime", "pytorch"),
            f"{r.info.num_params / 1e6:.1f}M",
            "result cache" if r.repeated else r.load.describe(),
            measured(r),
            round(t.preprocess_ms, 1),
            round(t.forward_ms, 1),
            round(t.postprocess_ms, 1),
            round(t.total_ms, 1),
            r.prediction.device,
        ))
    return pd.DataFrame(rows, columns=list(LATENCY_COLUMNS))


def latency_chart_data(results: Sequence[Classification]) -> pd.DataFrame:
    """Long format for a stacked bar chart: one row per model and stage. A model answered from the
    result cache is labelled "NAME (cached)": its bars are an earlier request's times."""
    import pandas as pd

    rows = []
    for r in results:
        t = r.prediction.times
        stages = (("preprocess", t.preprocess_ms), ("forward", t.forward_ms), ("postprocess", t.postprocess_ms))
        name = r.info.display_name + (CACHED_SUFFIX if r.repeated else "")
        rows += [(name, stage, round(ms, 1)) for stage, ms in stages]
    return pd.DataFrame(rows, columns=list(CHART_COLUMNS))


def _base_name(label: str) -> str:
    """"tabby, tabby cat" -> "tabby"; "crane (134)" -> "crane": ImageNet synonyms differ by source."""
    name = label.split(",")[0].strip().lower()
    if name.endswith(")") and " (" in name:
        name = name[: name.rindex(" (")]
    return name


def same_label_space(a: Sequence[str], b: Sequence[str], min_match: float = 0.99) -> bool:
    """True when two index-aligned label lists name the same classes (ImageNet-1k from torchvision
    and from the Hub differ only in synonyms and spelling of a few entries)."""
    if len(a) != len(b) or not a:
        return False
    matches = sum(_base_name(x) == _base_name(y) for x, y in zip(a, b))
    return matches / len(a) >= min_match


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def agreement_table(results: Sequence[Classification]) -> pd.DataFrame:
    """Pairwise agreement: same top-1, share of top-k in common, JS divergence when comparable."""
    import pandas as pd

    rows = []
    for a, b in itertools.combinations(results, 2):
        pa, pb = a.prediction, b.prediction
        k = min(len(pa.top), len(pb.top))
        comparable = same_label_space(pa.labels, pb.labels)
        if comparable:
            top_a = [s.index for s in pa.top[:k]]
            top_b = [s.index for s in pb.top[:k]]
        else:  # different label sets: compare by name
            top_a = [_base_name(s.label) for s in pa.top[:k]]
            top_b = [_base_name(s.label) for s in pb.top[:k]]
        rows.append((
            a.info.display_name,
            b.info.display_name,
            top_a[0] == top_b[0],
            round(len(set(top_a) & set(top_b)) / k, 3),
            round(js_divergence(pa.probabilities, pb.probabilities), 4) if comparable else None,
        ))
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
