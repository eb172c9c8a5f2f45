"""The core's front door: image in, predictions out. Used by the CLI and by the app alike."""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from dashboard.errors import ExplainError
from dashboard.images import MAX_ASPECT_RATIO, load_image, read_source, source_digest
from dashboard.models.batching import BatchRunner
from dashboard.models.cache import LoadInfo, ModelCache
from dashboard.models.classifier import Classifier, ModelInfo, Prediction
from dashboard.models.registry import ModelSpec, resolve_spec
from dashboard.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from PIL import Image

    from dashboard.explain.explainer import Explainer
    from dashboard.explain.record import Explanation, Target

ImageSource = Union[bytes, str, os.PathLike, "Image.Image"]


@dataclass(frozen=True)
class Classification:
    """One model's answer for one image, with how the model was obtained."""

    prediction: Prediction
    info: ModelInfo
    load: LoadInfo
    repeated: bool = False  # answered from the result cache (same bytes, model and top-k)


def resolve_device(requested: str) -> str:
    """"auto" -> "cuda" when a GPU is usable, else "cpu"; anything else is validated by torch."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} was asked for, but CUDA is not available here")
    return str(device)


class ClassificationService:
    """Owns the process-wide model cache and a small cache of recent results."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or resolve_settings()
        self.cache = ModelCache(self._load, self.settings.memory_budget_mb * 2**20)
        self._device: str | None = None
        self._results: OrderedDict[tuple, Classification] = OrderedDict()
        self._results_lock = threading.Lock()
        self._batches = BatchRunner(self.settings.max_batch_size, slots=self.settings.workers)
        # explainers live as long as their classifier stays in the model cache
        self._explainers: weakref.WeakKeyDictionary[Classifier, Explainer] = weakref.WeakKeyDictionary()
        self._explainers_lock = threading.Lock()

    # --- models ---------------------------------------------------------------------------
    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.settings.device)
            _configure_torch_threads(self.settings.workers)
        return self._device

    def spec(self, key: str) -> ModelSpec:
        return resolve_spec(key, allow_custom=self.settings.allow_custom_models)

    def model(self, key: str) -> tuple[Classifier, LoadInfo]:
        """The loaded classifier for a registry key or custom id, loading it on first use."""
        return self.cache.get(self.spec(key).key)

    def is_loaded(self, key: str) -> bool:
        return self.cache.is_loaded(self.spec(key).key)

    def preload(self, keys: Sequence[str]) -> dict[str, LoadInfo]:
        return {key: self.model(key)[1] for key in keys}

    def _load(self, key: str) -> Classifier:
        spec = self.spec(key)
        if spec.backend == "torchvision":
            from dashboard.models import torchvision_backend

            classifier = torchvision_backend.load(spec, self.device)
        else:
            from dashboard.models import transformers_backend

            max_params = None if spec.builtin else self.settings.max_model_params
            classifier = transformers_backend.load(spec, self.device, max_params=max_params)
        classifier.warm_up()
        return classifier

    # --- classification -------------------------------------------------------------------
    def classify(
        self, source: ImageSource | None, key: str, top_k: int | None = None,
        filename: str | None = None,
    ) -> Classification:
        """Classify one image with one model."""
        return self.compare_models(source, [key], top_k, filename)[0]

    def compare_models(
        self, source: ImageSource | None, keys: Sequence[str], top_k: int | None = None,
        filename: str | None = None,
    ) -> list[Classification]:
        """The image is read, checked and decoded once, whatever the number of models."""
        top_k = self.settings.top_k if top_k is None else int(top_k)
        data, filename = read_source(source, filename)
        digest = source_digest(data)
        specs = [self.spec(key) for key in keys]
        image = None
        results = []
        for spec in specs:
            cached = self._recall((digest, spec.key, top_k))
            if cached is not None:
                results.append(cached)
                continue
            if image is None:
                image = load_image(data, max_pixels=self.settings.max_pixels, filename=filename,
                                   max_aspect_ratio=MAX_ASPECT_RATIO).image
            classifier, load = self.cache.get(spec.key)
            batch, preprocess_ms = classifier.timed_preprocess([image])
            prediction = self._batches.run(classifier, batch, top_k, preprocess_ms)
            result = Classification(prediction, classifier.info, load)
            self._remember((digest, spec.key, top_k), result)
            results.append(result)
        return results

    # --- explanations (heatmaps) ----------------------------------------------------------
    def explain(
        self, source: ImageSource | None, key: str, target: Target = None, method: str | None = None,
        *, opacity: float | None = None, filename: str | None = None,
    ) -> Explanation:
        """Where one model looks in the image for class ``target`` (index or label; None = top-1).

        ``method``: gradcam, gradcam++, eigencam (CNNs and ViTs), rollout (ViTs); None or
        "auto" is the family's default (Grad-CAM for CNNs, rollout for ViTs).
        """
        return self.explain_models(source, [key], method, target=target, opacity=opacity,
                                   filename=filename)[0]

    def explain_models(
        self, source: ImageSource | None, keys: Sequence[str], method: str | None = None, *,
        target: Target = None, opacity: float | None = None, filename: str | None = None,
    ) -> list[Explanation]:
        """One explanation per model, the image read and decoded once. Runs on each model's
        explainer copy, never on the classification fast path."""
        from dashboard.explain.record import DEFAULT_OPACITY

        opacity = DEFAULT_OPACITY if opacity is None else float(opacity)
        if not 0.0 <= opacity <= 1.0:  # NaN fails too
            raise ExplainError(f"The heatmap opacity must be between 0 and 1 (got {opacity:g}).")
        from dashboard.explain.record import resolve_method

        data, filename = read_source(source, filename)
        specs = [self.spec(key) for key in keys]
        for spec in specs:  # before any model loads
            resolve_method(method, spec.family, spec.display_name)
        explainers = [self.explainer(spec.key) for spec in specs]
        for explainer in explainers:
            explainer.target(target)
        image = load_image(data, max_pixels=self.settings.max_pixels, filename=filename,
                           max_aspect_ratio=MAX_ASPECT_RATIO).image
        return [e.explain(image, target, method, opacity) for e in explainers]

    def explainer(self, key: str) -> Explainer:
        """The explainer of a model (its private, hook-safe copy), built on first use."""
        from dashboard.explain.explainer import Explainer, RolloutOptions

        spec = self.spec(key)
        classifier, _ = self.cache.get(spec.key)
        with self._explainers_lock:
            explainer = self._explainers.get(classifier)
            if explainer is None:
                options = RolloutOptions(self.settings.explain_head_fusion, self.settings.explain_discard_ratio)
                explainer = Explainer.for_classifier(classifier, spec, options)
                self._explainers[classifier] = explainer
        return explainer

    def _recall(self, key: tuple) -> Classification | None:
        with self._results_lock:
            hit = self._results.get(key)
            if hit is None:
                return None
            self._results.move_to_end(key)
        return Classification(hit.prediction, hit.info, LoadInfo(True, 0.0), repeated=True)

    def _remember(self, key: tuple, result: Classification) -> None:
        if self.settings.result_cache_size <= 0:
            return
        with self._results_lock:
            self._results[key] = result
            while len(self._results) > self.settings.result_cache_size:
                self._results.popitem(last=False)


def _configure_torch_threads(workers: int) -> None:
    """torch threads x concurrent workers never above the core count."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // max(1, workers)))
