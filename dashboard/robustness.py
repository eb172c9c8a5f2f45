"""What the robustness features return: a model's answer on a perturbed image, and sweeps.

The service (ClassificationService.robustness / .sweep) builds these; the tab, the API and the
CLI render them. Tables are built from the declared column lists below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashboard.models.classifier import ClassScore, ModelInfo, Prediction
from dashboard.perturb import PERTURBATIONS, first_change

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

    from dashboard.perturb import Perturbed
    from dashboard.service import Classification

CURVE_COLUMNS = ("model", "strength", "probability", "top-1")
CHANGE_COLUMNS = ("model", "clean top-1", "clean probability", "first change at strength", "parameter there",
                  "new top-1", "batch size", "forward ms")


@dataclass(frozen=True)
class PerturbedAnswer:
    """One model on the clean image and on the perturbed one."""

    clean: Classification
    perturbed: Classification

    @property
    def changed(self) -> bool:
        """True when the perturbed image's top-1 class is not the clean image's."""
        return self.clean.prediction.top[0].index != self.perturbed.prediction.top[0].index


@dataclass(frozen=True)
class Robustness:
    """The perturbed image (with its parameters) and each model's answers, in the order asked."""

    perturbed: Perturbed
    answers: tuple[PerturbedAnswer, ...]


@dataclass(frozen=True)
class ModelSweep:
    """One model over every strength of a sweep (step 0 is the clean image)."""

    info: ModelInfo
    clean_top1: ClassScore
    probabilities: tuple[float, ...]  # probability of the clean top-1 class at each strength
    top1: tuple[ClassScore, ...]  # the top-1 at each strength
    first_change_step: int | None  # index of the first strength whose top-1 differs; None: never
    forward_ms: float
    batch_size: int  # rows in that forward (the strengths, plus any request merged with them)


@dataclass(frozen=True)
class Sweep:
    """One perturbation at several strengths, for 1-4 models."""

    perturbation: str
    seed: int
    params: tuple[tuple[str, float], ...]
    strengths: tuple[float, ...]
    values: tuple[float, ...]  # the physical parameter at each strength
    images: tuple[Image.Image, ...]  # the perturbed images, index-aligned with strengths
    models: tuple[ModelSweep, ...]

    def first_change(self, model: ModelSweep) -> float | None:
        """The first strength at which the model's top-1 changes, or None."""
        step = model.first_change_step
        return None if step is None else self.strengths[step]

    def describe(self, step: int) -> str:
        return PERTURBATIONS[self.perturbation].describe(self.strengths[step])

    def curve_frame(self) -> pd.DataFrame:
        """Long form: one row per (model, strength), for a line chart coloured by model."""
        import pandas as pd

        rows = [(m.info.display_name, s, p, t.label) for m in self.models
                for s, p, t in zip(self.strengths, m.probabilities, m.top1)]
        return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))

    def change_frame(self) -> pd.DataFrame:
        """One row per model: where its answer first changes (empty cells when it never does)."""
        import pandas as pd

        rows = []
        for m in self.models:
            step = m.first_change_step
            rows.append((m.info.display_name, m.clean_top1.label, round(m.clean_top1.probability, 4),
                         "never" if step is None else f"{self.strengths[step]:.3f}",
                         "" if step is None else self.describe(step),
                         "" if step is None else m.top1[step].label, m.batch_size, round(m.forward_ms, 1)))
        return pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))

    def records(self) -> list[dict]:
        """JSON-able, one record per model (the CLI's --json)."""
        return [{
            "model": m.info.key, "runtime": m.info.runtime, "perturbation": self.perturbation, "seed": self.seed, "params": dict(self.params),
            "parameter": PERTURBATIONS[self.perturbation].parameter,
            "clean_top1": {"index": m.clean_top1.index, "label": m.clean_top1.label,
                           "probability": round(m.clean_top1.probability, 6)},
            "first_change_strength": self.first_change(m),
            "steps": [{"strength": s, "value": v, "clean_top1_probability": round(p, 6),
                       "top1": t.label, "top1_index": t.index, "top1_probability": round(t.probability, 6)}
                      for s, v, p, t in zip(self.strengths, self.values, m.probabilities, m.top1)],
            "batch_size": m.batch_size, "forward_ms": round(m.forward_ms, 2),
        } for m in self.models]


def model_sweep(info: ModelInfo, predictions: Sequence[Prediction]) -> ModelSweep:
    """Reduce a model's predictions (one per strength, the clean image first) to its curve."""
    clean = predictions[0].top[0]
    top1 = tuple(p.top[0] for p in predictions)
    return ModelSweep(
        info=info, clean_top1=clean,
        probabilities=tuple(float(p.probabilities[clean.index]) for p in predictions),
        top1=top1, first_change_step=first_change([t.index for t in top1]),
        forward_ms=predictions[0].times.forward_ms, batch_size=predictions[0].batch_size,
    )
