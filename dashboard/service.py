"""The core's front door: image in, predictions out. Used by the CLI and by the app alike."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from dashboard.errors import DeviceUnavailableError, InvalidRequestError, ModelBusyError, ModelRefusedError
from dashboard.images import MAX_ASPECT_RATIO, load_image, read_source, source_digest
from dashboard.models.batching import BatchRunner
from dashboard.models.cache import LoadInfo, ModelCache
from dashboard.models.classifier import Classifier, ModelInfo, Prediction
from dashboard.models.registry import Origin, ModelSpec, resolve_spec
from dashboard.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from PIL import Image

    from dashboard.evaluate.metrics import EvaluationReport

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
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {requested!r} was asked for, but MPS is not available here")
    return str(device)


def check_top_k(value: object, default: int) -> int:
    """top-k as a whole number: None -> the default; 2.5, "abc", True -> a clear refusal.
    Whole numbers beyond the class count are clamped by the classifier."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"top-k must be a whole number such as 3, not {str(value)[:20]!r}.")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidRequestError(f"top-k must be a whole number such as 3, not {value:g}.")
    return int(value)


def _extension(filename: str | None) -> str:
    return os.path.splitext(filename or "")[1].lower()


class ClassificationService:
    """Owns the process-wide model cache and a small cache of recent results."""

    CUSTOM_WAIT_S = 0.0  # a custom model check/load waits this long for a slot, then "busy"
    REFUSAL_TTL_S = 60.0  # a refused custom id is answered from memory this long
    MAX_REFUSALS = 256

    def __init__(self, settings: Settings | None = None, *, origin: Origin = "app") -> None:
        """``origin`` says who sends model ids: "app" (visitors: built-in keys, Hub repository ids
        and operator-listed folders only) or "cli" (the operator: local directories too)."""
        self.settings = settings or resolve_settings()
        self.origin = origin
        self.cache = ModelCache(self._load, self.settings.memory_budget_mb * 2**20)
        self._device: str | None = None
        self._results: OrderedDict[tuple, Classification] = OrderedDict()
        self._results_bytes: dict[tuple, int] = {}
        self._results_lock = threading.Lock()
        self._batches = BatchRunner(self.settings.max_batch_size, slots=self.settings.workers)
        # Checking and loading custom models has its own few slots, apart from the built-ins'.
        self._custom_slots = threading.BoundedSemaphore(max(1, self.settings.custom_model_slots))
        self.local_dirs = local_model_dirs(self.settings.local_model_dirs)
        self._refusals: OrderedDict[str, tuple[float, str]] = OrderedDict()

    # --- models ---------------------------------------------------------------------------
    @property
    def device(self) -> str:
        if self._device is None:
            try:
                device = resolve_device(self.settings.device)
            except ValueError as exc:
                raise DeviceUnavailableError(
                    f"This server is configured for {self.settings.device}, which is not available "
                    "on this machine. Please tell the operator (DASHBOARD_DEVICE=auto or cpu works "
                    "everywhere).", detail=str(exc),
                ) from None
            _configure_torch_threads(self.settings.workers)
            self._device = device
        return self._device

    def check_device(self) -> str | None:
        """At start-up: None when the configured device is usable, else why not. Imports torch
        only for a device other than auto/cpu (start-up stays fast for the default)."""
        if self.settings.device in ("auto", "cpu"):
            return None
        try:
            self.device
        except DeviceUnavailableError as exc:
            return exc.detail
        return None

    def spec(self, key: str) -> ModelSpec:
        return resolve_spec(key, allow_custom=self.settings.allow_custom_models, origin=self.origin,
                            local_dirs=self.local_dirs)

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

            if spec.builtin:
                classifier = transformers_backend.load(spec, self.device)
            else:
                classifier = self._load_custom(spec)
        classifier.warm_up()
        return classifier

    def _load_custom(self, spec: ModelSpec) -> Classifier:
        """Check and load a free-form model in one of its own few slots, or answer "busy"."""
        from dashboard.models import transformers_backend

        device = self.device
        refused = self._recent_refusal(spec.key)
        if refused is not None:  # the same id again: the same answer, without touching any file
            raise ModelRefusedError(refused)
        # No queueing here: a request waiting for a custom slot would hold one of the app's
        # worker slots, which the built-in models need.
        if not self._custom_slots.acquire(timeout=self.CUSTOM_WAIT_S):
            raise ModelBusyError(
                "The server is busy checking or loading other custom models. Please try again in "
                "a few seconds (the built-in models are not affected)."
            )
        try:
            return transformers_backend.load(spec, device, max_params=self.settings.max_model_params)
        except ModelRefusedError as exc:
            with self._results_lock:
                self._refusals[spec.key] = (time.monotonic(), str(exc))
                while len(self._refusals) > self.MAX_REFUSALS:
                    self._refusals.popitem(last=False)
            raise
        finally:
            self._custom_slots.release()

    def _recent_refusal(self, key: str) -> str | None:
        with self._results_lock:
            hit = self._refusals.get(key)
            if hit is None or time.monotonic() - hit[0] > self.REFUSAL_TTL_S:
                self._refusals.pop(key, None)
                return None
            return hit[1]

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
        top_k = check_top_k(top_k, self.settings.top_k)
        data, filename = read_source(source, filename)
        # The file name's extension is part of the key: the same bytes under a name that
        # contradicts them are refused by load_image, never answered from the cache.
        digest = (source_digest(data), _extension(filename))
        specs = [self.spec(key) for key in keys]
        image = None
        results = []
        for spec in specs:
            cached = self._recall((digest, spec.key, top_k))
            if cached is not None:
                results.append(cached)
                continue
            if not spec.builtin:  # custom: checked first, so that a refusal costs no image decode
                classifier, load = self.cache.get(spec.key)
            if image is None:
                image = load_image(data, max_pixels=self.settings.max_pixels, filename=filename,
                                   max_aspect_ratio=MAX_ASPECT_RATIO).image
            if spec.builtin:  # built-in: a bad image is refused before any model loads
                classifier, load = self.cache.get(spec.key)
            batch, preprocess_ms = classifier.timed_preprocess([image])
            prediction = self._batches.run(classifier, batch, top_k, preprocess_ms)
            result = Classification(prediction, classifier.info, load)
            self._remember((digest, spec.key, top_k), result)
            results.append(result)
        return results

    # --- evaluation on labelled images (dashboard/evaluate) -----------------------------------
    def evaluate(self, source: str | os.PathLike, models: Sequence[str | Classifier], **options) -> EvaluationReport:
        """Accuracy of 1-4 models (registry keys, or Classifier objects built by the caller) on a
        labelled folder, .zip or CSV. Options: batch_size, limit, engine ("local" | "ray"),
        address, progress (called with an evaluate.engine.Progress), cancel (a threading.Event,
        checked after each batch), gallery_size, upload (True: a visitor's file, only a .zip is
        accepted). See dashboard.evaluate.runner.evaluate."""
        from dashboard.evaluate.runner import evaluate

        return evaluate(self, source, models, **options)

    def _recall(self, key: tuple) -> Classification | None:
        with self._results_lock:
            hit = self._results.get(key)
            if hit is None:
                return None
            self._results.move_to_end(key)
        return Classification(hit.prediction, hit.info, LoadInfo(True, 0.0), repeated=True)

    def _remember(self, key: tuple, result: Classification) -> None:
        """Keep a result, within both the entry cap and the byte cap (result_cache_mb)."""
        size = _result_bytes(result)
        cap = self.settings.result_cache_mb * 2**20
        if self.settings.result_cache_size <= 0 or size > cap:
            return
        with self._results_lock:
            self._results[key] = result
            self._results_bytes[key] = size
            while (len(self._results) > self.settings.result_cache_size
                   or sum(self._results_bytes.values()) > cap):
                old, _ = self._results.popitem(last=False)
                del self._results_bytes[old]

    def result_cache_bytes(self) -> int:
        with self._results_lock:
            return sum(self._results_bytes.values())


def _result_bytes(result: Classification) -> int:
    """Memory a cached result keeps: its probability vector, plus a pointer per label (the
    label strings are shared with the loaded model)."""
    prediction = result.prediction
    return int(prediction.probabilities.nbytes) + 8 * len(prediction.labels) + 1024


def local_model_dirs(dirs: Sequence[str]) -> dict[str, str]:
    """Operator-listed checkpoint folders by the name visitors choose them with (local:<name>)."""
    named: dict[str, str] = {}
    for folder in dirs:
        path = os.path.realpath(folder)
        name = os.path.basename(path)
        if name in named and named[name] != path:
            raise ValueError(f"DASHBOARD_LOCAL_MODEL_DIRS lists two folders named {name!r}")
        named[name] = path
    return named


def _configure_torch_threads(workers: int) -> None:
    """torch threads x concurrent workers never above the core count."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // max(1, workers)))
