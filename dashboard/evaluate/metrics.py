"""Accuracy, confidence intervals, confusions, disagreement and speed: tallied image by image.

Engines (local, Ray) feed ``Tally.add`` with each image's top-5 class indices per model; the
tally keeps counters and one small record per image (never the image), then ``Tally.report``
builds the ``EvaluationReport`` that the tables, the CSV and the JSON are made from.
"""

from __future__ import annotations

import itertools
import json
import statistics
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from dashboard.evaluate.labels import Matching, base_label, normalise

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

TOP_K = 5
CONFIDENCE = 0.95
TOP_CONFUSIONS = 10
MAX_LISTED = 200  # images listed per disagreeing pair in the report (the counts are exact)

SUMMARY_COLUMNS = ("model", "images", "top-1 %", "top-1 95% CI", "top-5 %", "top-5 95% CI",
                   "mean ms/image", "median ms/image", "images/s", "unmatched classes", "runtime")
CONFUSION_COLUMNS = ("model", "true class", "predicted", "images")
DISAGREEMENT_COLUMNS = ("model A", "model B", "images compared", "disagree", "disagree %", "examples")
PREDICTION_COLUMNS = ("image", "true class", "model", "predicted", "top-1 correct", "top-5 correct", "runtime")


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (scipy's binomtest), None when n is 0."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class ModelSide:
    """What the tally needs to know about one model."""

    key: str
    display_name: str
    labels: tuple[str, ...]
    matching: Matching
    runtime: str = "pytorch"  # dashboard.models.runtimes.RUNTIMES

    def label(self, index: int) -> str:
        return base_label(self.labels[index], index)


@dataclass
class ModelReport:
    key: str
    display_name: str
    evaluated: int  # images whose class matched one of the model's labels
    top1: int
    top5: int
    top1_ci: tuple[float, float] | None
    top5_ci: tuple[float, float] | None
    per_class: dict[str, tuple[int, int]]  # class -> (images, top-1 correct)
    mean_ms: float | None  # per image: the batch's preprocess + forward + postprocess / its size
    median_ms: float | None
    images_per_s: float | None  # images / time spent in this model's stages
    confusions: list[tuple[str, str, int]]  # (true class, predicted label, images), most frequent first
    matched_by: dict[str, str]  # class -> "index" | "wordnet id" | "label"
    unmatched_classes: tuple[str, ...]
    unmatched_images: int
    runtime: str = "pytorch"  # what ran the forward pass: pytorch, onnxruntime, onnxruntime-int8

    @property
    def top1_accuracy(self) -> float | None:
        return self.top1 / self.evaluated if self.evaluated else None

    @property
    def top5_accuracy(self) -> float | None:
        return self.top5 / self.evaluated if self.evaluated else None


@dataclass
class Disagreement:
    a: str
    b: str
    compared: int
    differ: int
    images: list[str]  # the first MAX_LISTED images on which the two top-1 labels differ

    @property
    def rate(self) -> float | None:
        return self.differ / self.compared if self.compared else None


@dataclass(frozen=True)
class GalleryItem:
    """A misclassified image (a thumbnail) with its true class and each model's top-1."""

    name: str
    true_class: str
    predicted: dict[str, str]  # model key -> top-1 label
    image: Image.Image

    @property
    def caption(self) -> str:
        wrong = ", ".join(f"{k}: {v}" for k, v in self.predicted.items())
        return f"{self.name} · true: {self.true_class} · {wrong}"


@dataclass
class EvaluationReport:
    models: list[ModelReport]
    disagreements: list[Disagreement]
    predictions: list[tuple[str, str, str, str, bool | None, bool | None, str]]  # PREDICTION_COLUMNS
    skipped: list[tuple[str, str]]  # (name, reason): listing and decoding
    images: int  # images decoded and run through every model
    planned: int  # entries the run was to cover (after --limit)
    cancelled: bool
    wall_s: float
    engine: str
    batch_size: int
    misclassified: list[tuple[str, str, dict[str, str]]]  # (name, true class, {model: top-1}) in order
    gallery: list[GalleryItem] = field(default_factory=list)

    # --- tables (declared columns) ---------------------------------------------------------
    def summary_table(self) -> pd.DataFrame:
        import pandas as pd

        def pct(x: float | None) -> float | None:
            return None if x is None else round(100 * x, 2)

        def ci(x: tuple[float, float] | None) -> str:
            return "" if x is None else f"{100 * x[0]:.1f}-{100 * x[1]:.1f}"

        def num(x: float | None, digits: int) -> float | None:
            return None if x is None else round(x, digits)

        rows = [(m.key, m.evaluated, pct(m.top1_accuracy), ci(m.top1_ci), pct(m.top5_accuracy), ci(m.top5_ci),
                 num(m.mean_ms, 2), num(m.median_ms, 2), num(m.images_per_s, 1),
                 ", ".join(m.unmatched_classes), m.runtime) for m in self.models]
        return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))

    def per_class_table(self) -> pd.DataFrame:
        """One row per class: its images, then each model's top-1 accuracy (%) on it."""
        import pandas as pd

        classes = sorted({c for m in self.models for c in m.per_class})  # unmatched ones are listed apart
        columns = ["class", "images", *(f"top-1 % {m.key}" for m in self.models)]
        rows = []
        for cls in classes:
            counts = [m.per_class.get(cls) for m in self.models]
            n = max((c[0] for c in counts if c), default=0)
            rows.append([cls, n, *(round(100 * c[1] / c[0], 2) if c and c[0] else None for c in counts)])
        return pd.DataFrame(rows, columns=columns)

    def confusion_table(self) -> pd.DataFrame:
        import pandas as pd

        rows = [(m.key, t, p, n) for m in self.models for t, p, n in m.confusions]
        return pd.DataFrame(rows, columns=list(CONFUSION_COLUMNS))

    def disagreement_table(self) -> pd.DataFrame:
        import pandas as pd

        rows = [(d.a, d.b, d.compared, d.differ, None if d.rate is None else round(100 * d.rate, 2),
                 ", ".join(d.images[:5]) + (" …" if d.differ > 5 else "")) for d in self.disagreements]
        return pd.DataFrame(rows, columns=list(DISAGREEMENT_COLUMNS))

    def predictions_table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.predictions, columns=list(PREDICTION_COLUMNS))

    # --- export -----------------------------------------------------------------------------
    def write_csv(self, path) -> None:
        """One row per image and model (tidy): true class, top-1 label, top-1 and top-5 correct."""
        self.predictions_table().to_csv(path, index=False)

    def to_dict(self) -> dict[str, Any]:
        models = []
        for m in self.models:
            d = asdict(m)
            d["top1_accuracy"], d["top5_accuracy"] = m.top1_accuracy, m.top5_accuracy
            d["per_class"] = {c: {"images": n, "top1_correct": k} for c, (n, k) in m.per_class.items()}
            d["confusions"] = [{"true": t, "predicted": p, "images": n} for t, p, n in m.confusions]
            models.append(d)
        return {
            "engine": self.engine, "batch_size": self.batch_size, "images": self.images,
            "planned": self.planned, "cancelled": self.cancelled, "wall_s": round(self.wall_s, 3),
            "models": models,
            "disagreements": [{**asdict(d), "rate": d.rate} for d in self.disagreements],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
            "predictions": [dict(zip(PREDICTION_COLUMNS, row)) for row in self.predictions],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


class Tally:
    """Counters fed one image at a time; ``report()`` turns them into an EvaluationReport."""

    def __init__(self, models: Sequence[ModelSide]) -> None:
        self.models = list(models)
        n = len(self.models)
        self._evaluated = [0] * n
        self._top1 = [0] * n
        self._top5 = [0] * n
        self._per_class: list[Counter] = [Counter() for _ in range(n)]  # (class, correct) counts
        self._confusions: list[Counter] = [Counter() for _ in range(n)]
        self._unmatched_images = [0] * n
        self._ms: list[array] = [array("d") for _ in range(n)]
        self._pairs = {pair: [0, 0, []] for pair in itertools.combinations(range(n), 2)}
        self.predictions: list[tuple] = []
        self.misclassified: list[tuple[str, str, dict[str, str]]] = []
        self.images = 0

    def add(self, name: str, true_class: str, tops: Sequence[Sequence[int]], ms: Sequence[float]) -> None:
        """One image: its class, each model's top-5 indices (best first) and ms per image."""
        self.images += 1
        top1_labels = []
        wrong: dict[str, str] = {}
        for i, (side, top, t) in enumerate(zip(self.models, tops, ms)):
            self._ms[i].append(t)
            predicted = side.label(int(top[0]))
            top1_labels.append(normalise(predicted.split(",")[0]))  # models may word synonyms apart
            truth = side.matching.index_of.get(true_class)
            if truth is None:
                self._unmatched_images[i] += 1
                self.predictions.append((name, true_class, side.key, predicted, None, None, side.runtime))
                continue
            ok1, ok5 = int(top[0]) == truth, truth in [int(x) for x in top[:TOP_K]]
            self._evaluated[i] += 1
            self._top1[i] += ok1
            self._top5[i] += ok5
            self._per_class[i][(true_class, ok1)] += 1
            if not ok1:
                self._confusions[i][(true_class, predicted)] += 1
                wrong[side.key] = predicted
            self.predictions.append((name, true_class, side.key, predicted, ok1, ok5, side.runtime))
        if wrong:
            self.misclassified.append((name, true_class, wrong))
        for (a, b), counts in self._pairs.items():
            counts[0] += 1
            if top1_labels[a] != top1_labels[b]:
                counts[1] += 1
                if len(counts[2]) < MAX_LISTED:
                    counts[2].append(name)

    def report(self, *, skipped: list[tuple[str, str]], planned: int, cancelled: bool, wall_s: float,
               engine: str, batch_size: int) -> EvaluationReport:
        models = []
        for i, side in enumerate(self.models):
            n = self._evaluated[i]
            classes = sorted({c for c, _ in self._per_class[i]})
            per_class = {c: (self._per_class[i][(c, True)] + self._per_class[i][(c, False)],
                             self._per_class[i][(c, True)]) for c in classes}
            ms = self._ms[i]
            confusions = sorted(self._confusions[i].items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CONFUSIONS]
            models.append(ModelReport(
                key=side.key, display_name=side.display_name, evaluated=n,
                top1=self._top1[i], top5=self._top5[i],
                top1_ci=wilson_interval(self._top1[i], n), top5_ci=wilson_interval(self._top5[i], n),
                per_class=per_class,
                mean_ms=statistics.fmean(ms) if ms else None,
                median_ms=statistics.median(ms) if ms else None,
                images_per_s=len(ms) / (sum(ms) / 1e3) if ms and sum(ms) > 0 else None,
                confusions=[(t, p, c) for (t, p), c in confusions],
                matched_by=dict(side.matching.how),
                unmatched_classes=side.matching.unmatched,
                unmatched_images=self._unmatched_images[i],
                runtime=side.runtime,
            ))
        disagreements = [Disagreement(self.models[a].key, self.models[b].key, c[0], c[1], list(c[2]))
                         for (a, b), c in self._pairs.items()]
        return EvaluationReport(models, disagreements, self.predictions, list(skipped), self.images, planned,
                                cancelled, wall_s, engine, batch_size, self.misclassified)
