"""Fair timing: one warm-up run, then N timed runs of each stage, summarised by median and spread.

A comparison's latency table holds one run per model, and a result-cache answer repeats an
earlier request's times. Here every run is a real pass of batch 1 through the classifier itself
(no result cache, no cross-request batching): preprocess, forward and postprocess, each timed
with ``time.perf_counter``, after one untimed warm-up run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dashboard.errors import DashboardError, InferenceError, InvalidRequestError

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

    from dashboard.models.classifier import Classifier, ModelInfo

log = logging.getLogger(__name__)

STAGES = ("preprocess", "forward", "postprocess")
TOTAL = "total"  # the sum of the three stages of each run (its median is not the sum of medians)
MIN_RUNS = 3  # fewer runs have no meaningful quartiles
DEFAULT_RUNS = 10
MAX_MODELS = 4
TIMING_COLUMNS = ("model", "runtime", "stage", "runs", "median ms", "IQR ms", "min ms", "max ms", "device")


@dataclass(frozen=True)
class Spread:
    """Median, quartiles and range of a stage's times over the timed runs, in ms."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    max_ms: float

    @property
    def iqr_ms(self) -> float:
        """Interquartile range: the width of the middle half of the runs."""
        return self.q3_ms - self.q1_ms

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        """The summary of ``samples`` (numpy's linear-interpolated quartiles)."""
        values = np.asarray(samples, dtype=np.float64)
        if values.size == 0:
            raise ValueError("no samples to summarise")
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        return cls(float(median), float(q1), float(q3), float(values.min()), float(values.max()))


@dataclass(frozen=True)
class ModelTiming:
    """One model's fair timing: the times of every timed run, per stage and in total."""

    info: ModelInfo
    device: str
    warmup_ms: float  # the untimed warm-up run's total, for the record (never in the statistics)
    samples: dict[str, tuple[float, ...]]  # "preprocess", "forward", "postprocess", "total" -> ms per run

    @property
    def runs(self) -> int:
        return len(self.samples[TOTAL])

    def spread(self, stage: str) -> Spread:
        return Spread.of(self.samples[stage])

    def record(self) -> dict:
        """JSON-ready: the summary per stage and the raw times (ms, rounded to 0.001)."""
        def stats(stage: str) -> dict:
            s = self.spread(stage)
            return {"median": round(s.median_ms, 3), "q1": round(s.q1_ms, 3), "q3": round(s.q3_ms, 3),
                    "iqr": round(s.iqr_ms, 3), "min": round(s.min_ms, 3), "max": round(s.max_ms, 3)}

        return {
            "model": self.info.key, "display_name": self.info.display_name, "runtime": self.info.runtime,
            "device": self.device, "runs": self.runs, "warmup_ms": round(self.warmup_ms, 3),
            "stages_ms": {stage: stats(stage) for stage in (*STAGES, TOTAL)},
            "samples_ms": {stage: [round(v, 3) for v in self.samples[stage]] for stage in (*STAGES, TOTAL)},
        }


def check_runs(value: object, maximum: int) -> int:
    """The number of timed runs as a whole number from MIN_RUNS to ``maximum``, or a clear refusal."""
    expected = f"The number of timed runs must be a whole number from {MIN_RUNS} to {maximum}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{expected}, not {str(value)[:20]!r}.")
    if value != value or isinstance(value, float) and not value.is_integer():  # NaN, 2.5, inf
        raise InvalidRequestError(f"{expected}, not {value:g}.")
    if not MIN_RUNS <= value <= maximum:
        raise InvalidRequestError(f"{expected}, not {value:g}.")
    return int(value)


def check_models(keys: object) -> list[str]:
    """1 to MAX_MODELS distinct model choices."""
    if isinstance(keys, str):
        keys = [keys]
    chosen = list(dict.fromkeys(str(k) for k in (keys or []) if str(k).strip()))  # type: ignore[union-attr]
    if not 1 <= len(chosen) <= MAX_MODELS:
        raise InvalidRequestError(
            f"Choose between 1 and {MAX_MODELS} models to time (you chose {len(chosen)}).")
    return chosen


def time_classifier(classifier: Classifier, image: Image.Image, runs: int, *,
                    clock: Callable[[], float] = time.perf_counter) -> ModelTiming:
    """One warm-up run, then ``runs`` timed runs of the three stages on ``image`` (batch 1).

    The caller holds the forward slot (so nothing else competes for the cores meanwhile).
    ``clock`` is for tests; it returns seconds.
    """
    samples: dict[str, list[float]] = {stage: [] for stage in (*STAGES, TOTAL)}
    warmup_ms = 0.0
    try:
        for run in range(runs + 1):
            t0 = clock()
            batch = classifier.preprocess([image])
            _sync(classifier)
            t1 = clock()
            logits = classifier.forward(batch)
            _sync(classifier)
            t2 = clock()
            classifier.postprocess(logits, 1)  # softmax, top-k and the copy to the CPU
            t3 = clock()
            if run == 0:
                warmup_ms = (t3 - t0) * 1e3
                continue
            for stage, ms in zip(STAGES, ((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)):
                samples[stage].append(ms)
            samples[TOTAL].append((t3 - t0) * 1e3)
    except DashboardError:
        raise
    except Exception as exc:  # like a classification: the library's text stays in the server log
        log.exception("%s failed during fair timing", classifier.info.key)
        raise InferenceError(
            f"{classifier.info.display_name} failed on this image. Try another image or model.") from exc
    return ModelTiming(classifier.info, classifier.device_label, warmup_ms,
                       {stage: tuple(values) for stage, values in samples.items()})


def _sync(classifier: Classifier) -> None:
    """Wait for a GPU's queued work, so that a stage's time is its own."""
    device = classifier.device
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)


def timing_table(timings: Sequence[ModelTiming]) -> pd.DataFrame:
    """Four rows per model (the three stages and the total): runs, median, IQR, min and max in ms."""
    import pandas as pd

    rows = []
    for t in timings:
        for stage in (*STAGES, TOTAL):
            s = t.spread(stage)
            rows.append((t.info.display_name, t.info.runtime, stage, t.runs, round(s.median_ms, 2),
                         round(s.iqr_ms, 2), round(s.min_ms, 2), round(s.max_ms, 2), t.device))
    return pd.DataFrame(rows, columns=list(TIMING_COLUMNS))
