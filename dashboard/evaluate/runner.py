"""What ``ClassificationService.evaluate`` runs: resolve models, open the dataset, pick the engine."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from dashboard.errors import DatasetError
from dashboard.evaluate.datasets import ArchiveLimits, open_dataset
from dashboard.evaluate.engine import ProgressFn, build_gallery, run_local
from dashboard.evaluate.metrics import EvaluationReport
from dashboard.models.runtimes import join_choice
from dashboard.settings import Settings

if TYPE_CHECKING:
    from dashboard.models.classifier import Classifier
    from dashboard.service import ClassificationService

ENGINES = ("local", "ray")
MAX_MODELS = 4
ModelRef = Union[str, "Classifier"]


@dataclass(frozen=True)
class KeyModel:
    """A picklable model factory for a Ray worker: the model-cache key ("KEY" or "KEY@RUNTIME"),
    loaded by a service there (an ONNX runtime reuses the file the driver exported, when the
    ONNX cache folder is shared)."""

    key: str
    settings: Settings

    def __call__(self) -> Classifier:
        from dashboard.service import ClassificationService

        return ClassificationService(self.settings).model(self.key)[0]


@dataclass(frozen=True)
class GivenModel:
    """A classifier built by the caller (a test's known model), shipped to Ray workers as it is."""

    classifier: Classifier

    def __call__(self) -> Classifier:
        return self.classifier


def archive_limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(
        max_archive_bytes=int(settings.eval_max_archive_mb * 2**20),
        max_entries=settings.eval_max_entries,
        max_total_bytes=int(settings.eval_max_uncompressed_mb * 2**20),
        max_ratio=settings.eval_max_ratio,
    )


def evaluate(service: ClassificationService, source: str | os.PathLike, models: Sequence[ModelRef], *,
             batch_size: int | None = None, limit: int | None = None, engine: str = "local",
             address: str | None = None, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, gallery_size: int | None = None,
             upload: bool = False, runtime: str | None = None) -> EvaluationReport:
    """``upload``: the dataset came from a visitor, so only a .zip is accepted (never a folder or
    a CSV naming files on the server). ``runtime`` (default pytorch) applies to every key without
    its own "@RUNTIME"; the same model on two runtimes is two models of the report."""
    settings = service.settings
    batch_size = settings.eval_batch_size if batch_size is None else int(batch_size)
    gallery_size = settings.eval_gallery_size if gallery_size is None else int(gallery_size)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    if limit is not None and int(limit) < 1:
        raise ValueError("the limit must be at least 1 image")
    refs = list({(m if isinstance(m, str) else id(m)): m for m in models}.values())  # drop repeats
    if not 1 <= len(refs) <= MAX_MODELS:
        raise DatasetError(f"Choose between 1 and {MAX_MODELS} models to evaluate (you chose {len(refs)}).")
    # unknown keys and runtimes fail first, then the data; "resnet18" and "resnet18@pytorch" are one
    chosen: dict[object, tuple[ModelRef, str | None]] = {}
    for m in refs:
        key = _cache_key(service, m, runtime) if isinstance(m, str) else None
        chosen.setdefault(key or id(m), (m, key))
    refs, keys = [m for m, _ in chosen.values()], [k for _, k in chosen.values()]
    with open_dataset(source, archive_limits(settings), archive_only=upload) as dataset:
        classifiers = [service.model(key)[0] if key else m for key, m in zip(keys, refs)]
        if engine == "local":
            report = run_local(dataset, classifiers, batch_size=batch_size, max_pixels=settings.max_pixels,
                               limit=limit, progress=progress, cancel=cancel)
        else:
            from dashboard.evaluate.ray_engine import run_ray

            factories = [KeyModel(key, settings) if key else GivenModel(m) for key, m in zip(keys, refs)]
            report = run_ray(dataset, factories, classifiers, batch_size=batch_size,
                             max_pixels=settings.max_pixels, limit=limit, address=address,
                             progress=progress, cancel=cancel)
        report.gallery = build_gallery(dataset, report, gallery_size, settings.max_pixels)
    return report


def _cache_key(service: ClassificationService, key: str, runtime: str | None) -> str:
    """The model-cache key of a key or "KEY@RUNTIME" choice: "resnet18", "resnet18@onnxruntime"."""
    spec, runtime = service.choice(key, runtime)
    return join_choice(spec.key, runtime)
