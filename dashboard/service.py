"""The core's front door: image in, predictions out. Used by the CLI and by the app alike."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from dashboard.errors import (
    DashboardError,
    DeviceUnavailableError,
    ImageInputError,
    ExplainError, InvalidRequestError, ModelBusyError,
    ModelRefusedError,
)
from dashboard.expected import ExpectedClass, Verdict, expected_for_digest, verdict
from dashboard.images import MAX_ASPECT_RATIO, load_image, read_source, source_digest
from dashboard.measured import MeasuredLatency
from dashboard.models.batching import BatchRunner
from dashboard.models.cache import LoadInfo, ModelCache
from dashboard.models.classifier import Classifier, ModelInfo, Prediction
from dashboard.models.registry import Origin, ModelSpec, resolve_spec
from dashboard.models.runtimes import DISPLAY_NAMES, PYTORCH, join_choice, split_choice
from dashboard.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from PIL import Image

    from dashboard.perturb import Perturbed
    from dashboard.robustness import Robustness, Sweep
    from dashboard.timing import ModelTiming
    from dashboard.explain.explainer import Explainer
    from dashboard.explain.record import Explanation, Target
    from dashboard.evaluate.metrics import EvaluationReport

ImageSource = Union[bytes, str, os.PathLike, "Image.Image"]
log = logging.getLogger(__name__)
UNEXPECTED_MODEL_ERROR = "This model failed on the server; the other models' results are shown."


@dataclass(frozen=True)
class Classification:
    """One model's answer for one image, with how the model was obtained."""

    prediction: Prediction
    info: ModelInfo
    load: LoadInfo
    repeated: bool = False  # answered from the result cache (same bytes and model; any top-k)
    expected: ExpectedClass | None = None  # the image is an example whose ImageNet class is known

    @property
    def verdict(self) -> Verdict | None:
        """Right/wrong of the top-1 against the example's expected class (None: no expected class)."""
        top = self.prediction.top[0]
        return verdict(self.expected, top.index, top.label, self.info.num_classes)


@dataclass(frozen=True)
class ModelFailure:
    """One model's failure in a comparison: a message for a person; the error itself stays here."""

    key: str
    display_name: str
    runtime: str
    message: str
    error: DashboardError = field(repr=False, compare=False)


def _failure(key: str, spec: ModelSpec | None, runtime: str | None, exc: DashboardError) -> ModelFailure:
    if exc.detail:  # server paths and library errors: for the operator's log, never the visitor
        log.warning("model %r failed: %s (%s)", key, exc, exc.detail)
    try:
        name, rt = split_choice(str(key), runtime)
    except DashboardError:  # the runtime itself was refused
        name, rt = str(key), str(runtime or PYTORCH)
    return ModelFailure(str(key), spec.display_name if spec else name, rt, str(exc), exc)


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
        # explainers live as long as their classifier stays in the model cache
        self._explainers: weakref.WeakKeyDictionary[Classifier, Explainer] = weakref.WeakKeyDictionary()
        self._explainers_lock = threading.Lock()
        # Checking and loading custom models has its own few slots, apart from the built-ins'.
        self._custom_slots = threading.BoundedSemaphore(max(1, self.settings.custom_model_slots))
        self.local_dirs = local_model_dirs(self.settings.local_model_dirs)
        self._refusals: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self.measured = MeasuredLatency()  # fresh total times per model, for the accuracy/latency plot

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

    def choice(self, key: str, runtime: str | None = None) -> tuple[ModelSpec, str]:
        """(spec, runtime) of a key, custom id or "KEY@RUNTIME" choice; ``runtime`` (default
        pytorch) applies to keys without "@". Unknown runtimes raise an error listing the valid."""
        model_key, runtime = split_choice(key, runtime)
        return self.spec(model_key), runtime

    def model(self, key: str, runtime: str | None = None) -> tuple[Classifier, LoadInfo]:
        """The loaded classifier for a registry key or custom id on a runtime (default pytorch),
        loading it on first use; one cache entry per (model, runtime)."""
        spec, runtime = self.choice(key, runtime)
        return self.cache.get(join_choice(spec.key, runtime))

    def is_loaded(self, key: str, runtime: str | None = None) -> bool:
        spec, runtime = self.choice(key, runtime)
        return self.cache.is_loaded(join_choice(spec.key, runtime))

    def preload(self, keys: Sequence[str]) -> dict[str, LoadInfo]:
        return {key: self.model(key)[1] for key in keys}

    def _load(self, key: str) -> Classifier:
        model_key, runtime = split_choice(key)
        if runtime != PYTORCH:
            return self._load_onnx(model_key, runtime)
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

    def _load_onnx(self, key: str, runtime: str) -> Classifier:
        """Load the PyTorch model, then export/reuse its ONNX file (dashboard.models.onnx_backend)."""
        from dashboard.models import onnx_backend
        from dashboard.models.runtimes import import_onnxruntime

        import_onnxruntime()  # without onnxruntime: say so before loading anything
        base = self._load(key)
        classifier = onnx_backend.build(base, self.spec(key), runtime, cache_dir=self.settings.onnx_cache_dir,
                                        workers=self.settings.workers, device=self.device)
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
        filename: str | None = None, runtime: str | None = None,
    ) -> Classification:
        """Classify one image with one model (on ``runtime``, default pytorch)."""
        return self.compare_models(source, [key], top_k, filename, runtime)[0]

    def compare_models(
        self, source: ImageSource | None, keys: Sequence[str], top_k: int | None = None,
        filename: str | None = None, runtime: str | None = None,
    ) -> list[Classification]:
        """Like classify_each, but the first model's failure is raised (the CLI's and old callers' way)."""
        for key in keys:  # an unknown model or runtime is refused before anything runs
            self.choice(key, runtime)
        results = self.classify_each(source, keys, top_k, filename, runtime)
        for result in results:
            if isinstance(result, ModelFailure):
                raise result.error
        return results  # type: ignore[return-value]

    def classify_each(
        self, source: ImageSource | None, keys: Sequence[str], top_k: int | None = None,
        filename: str | None = None, runtime: str | None = None,
    ) -> list[Classification | ModelFailure]:
        """Each model's answer, or its failure, in the order of ``keys``.

        The image is read, checked and decoded once, whatever the number of models; an image error
        raises (it is every model's error). A model's own error (missing weights, refused id, export
        refusal, busy) becomes a ModelFailure in its slot. A key may be "KEY@RUNTIME"
        (dashboard.models.runtimes); others run on ``runtime`` (default pytorch)."""
        top_k = check_top_k(top_k, self.settings.top_k)
        data, filename = read_source(source, filename)
        # The file name's extension is part of the key: the same bytes under a name that
        # contradicts them are refused by load_image, never answered from the cache.
        digest = (source_digest(data), _extension(filename))
        expected = expected_for_digest(digest[0]) if isinstance(data, bytes) else None
        image = None

        def decoded() -> Image.Image:
            nonlocal image
            if image is None:
                image = self._checked_image(data, filename).image
            return image

        results: list[Classification | ModelFailure] = []
        for key in keys:
            spec = None
            try:
                spec, rt = self.choice(key, runtime)
                cache_key = join_choice(spec.key, rt)
                cached = self._recall((digest, cache_key), top_k)
                if cached is not None:
                    results.append(cached)
                    continue
                if not spec.builtin:  # custom: checked first, so that a refusal costs no image decode
                    classifier, load = self.cache.get(cache_key)
                picture = decoded()  # outside the model's fault: an image error propagates
                if spec.builtin:  # built-in: a bad image is refused before any model loads
                    classifier, load = self.cache.get(cache_key)
                batch, preprocess_ms = classifier.timed_preprocess([picture])
                prediction = self._batches.run(classifier, batch, top_k, preprocess_ms)
            except ImageInputError:
                raise
            except DashboardError as exc:
                results.append(_failure(key, spec, runtime, exc))
                continue
            except Exception as exc:  # a bug or a library's surprise: logged, curated for the visitor
                log.exception("unexpected error classifying with %r", key)
                results.append(_failure(key, spec, runtime, DashboardError(UNEXPECTED_MODEL_ERROR)))
                continue
            result = Classification(prediction, classifier.info, load, expected=expected)
            self.measured.record(cache_key, prediction.times.total_ms)
            self._remember((digest, cache_key), result)
            results.append(result)
        if image is None and any(isinstance(r, ModelFailure) for r in results):
            decoded()  # every model failed before the decode: a bad image is still the image's error
        return results

    # --- robustness: perturbed images, their predictions, sweeps (dashboard/perturb.py) ----------
    def perturb_preview(
        self, source: ImageSource | None, perturbation: str, strength: float, seed: int | None = None,
        x: float = 0.5, y: float = 0.5, filename: str | None = None,
    ) -> Perturbed:
        """The checked, decoded image with one named perturbation applied (strength 0-1)."""
        from dashboard import perturb

        perturb.resolve(perturbation), perturb.check_strength(strength), perturb.check_seed(seed)
        _, image = self._working_image(source, filename)
        return perturb.perturb(image, perturbation, strength, seed, x, y)

    def robustness(
        self, source: ImageSource | None, keys: Sequence[str], perturbation: str, strength: float,
        seed: int | None = None, x: float = 0.5, y: float = 0.5, top_k: int | None = None,
        filename: str | None = None, runtime: str | None = None,
    ) -> Robustness:
        """Each model (1-4) on the clean and on the perturbed image, on ``runtime`` (default pytorch;
        a key may be "KEY@RUNTIME"). The perturbed answer is cached under its own key (source digest +
        perturbation, strength, seed, patch), never the clean one's."""
        from dashboard import perturb
        from dashboard.robustness import PerturbedAnswer, Robustness

        choices = self._model_choices(perturb.check_models(keys), runtime)
        perturb.resolve(perturbation), perturb.check_strength(strength), perturb.check_seed(seed)
        top_k = check_top_k(top_k, self.settings.top_k)
        digest, image = self._working_image(source, filename)
        perturbed = perturb.perturb(image, perturbation, strength, seed, x, y)
        answers = tuple(
            PerturbedAnswer(self._classify_image(image, cache_key, top_k, (*digest, cache_key)),
                            self._classify_image(perturbed.image, cache_key, top_k,
                                                 (*digest, perturbed.cache_key, cache_key)))
            for cache_key in choices
        )
        return Robustness(perturbed, answers)

    def sweep(
        self, source: ImageSource | None, keys: Sequence[str], perturbation: str, steps: int | None = None,
        seed: int | None = None, x: float = 0.5, y: float = 0.5, filename: str | None = None,
        runtime: str | None = None,
    ) -> Sweep:
        """One perturbation at ``steps`` strengths from 0 to 1 for 1-4 models on ``runtime`` (default
        pytorch; a key may be "KEY@RUNTIME"); each model classifies all the perturbed images in one
        batched forward pass (one job of the batch runner)."""
        from dashboard import perturb
        from dashboard.robustness import Sweep, model_sweep

        steps = perturb.check_steps(perturb.DEFAULT_STEPS if steps is None else steps,
                                    self.settings.max_sweep_steps)
        choices = self._model_choices(perturb.check_models(keys), runtime)
        p = perturb.resolve(perturbation)
        seed = perturb.check_seed(seed)
        _, image = self._working_image(source, filename)
        levels = perturb.strengths(steps)
        perturbed = [perturb.perturb(image, p.name, s, seed, x, y) for s in levels]
        images = [q.image for q in perturbed]
        models = []
        for cache_key in choices:
            classifier, _ = self.cache.get(cache_key)
            batch, preprocess_ms = classifier.timed_preprocess(images)
            predictions = self._batches.run_many(classifier, batch, 1, preprocess_ms)
            models.append(model_sweep(classifier.info, predictions))
        return Sweep(p.name, seed, perturbed[0].params, tuple(levels), tuple(q.value for q in perturbed),
                     tuple(images), tuple(models))

    # --- fair timing: warm-up, N runs, median and spread (dashboard/timing.py) -------------------
    def time_models(
        self, source: ImageSource | None, keys: Sequence[str], runs: int | None = None, *,
        filename: str | None = None, runtime: str | None = None,
    ) -> list[ModelTiming]:
        """Each model (1-4; a key may be "KEY@RUNTIME", others run on ``runtime``, default pytorch):
        one warm-up run, then ``runs`` (3 to max_timing_runs) timed runs of batch 1 on the image.

        Never answered from the result cache and never merged with other requests: every run is
        a forward pass of its own. Each model is timed while holding one of the batch runner's
        forward slots, so timings and other forwards never share the cores at once."""
        from dashboard import timing

        maximum = self.settings.max_timing_runs
        runs = timing.check_runs(min(timing.DEFAULT_RUNS, maximum) if runs is None else runs, maximum)
        choices = self._model_choices(timing.check_models(keys), runtime)
        data, filename = read_source(source, filename)
        image = self._checked_image(data, filename).image  # refused before any model loads
        results = []
        for cache_key in choices:
            classifier, _ = self.cache.get(cache_key)
            with self._batches.slot():
                results.append(timing.time_classifier(classifier, image, runs))
        return results

    def _working_image(self, source: ImageSource | None, filename: str | None) -> tuple[tuple, Image.Image]:
        """(result-cache key prefix, the checked and decoded RGB image the perturbations work on).

        An image larger than ``perturb_max_side`` is scaled down first (Pillow's thumbnail): a sweep
        holds one copy per strength, and the models see 224 pixels anyway. Its clean answer is then
        the scaled image's, cached under its own key, so that strength 0 and clean always agree.
        """
        data, filename = read_source(source, filename)
        clean = self._checked_image(data, filename)
        digest = (clean.digest, _extension(filename))  # compare_models' key for the same source
        side = self.settings.perturb_max_side
        if max(clean.image.size) <= side:
            return (digest,), clean.image
        image = clean.image.copy()
        image.thumbnail((side, side))
        return (digest, ("scaled", side)), image

    def _checked_image(self, data: bytes | Image.Image, filename: str | None):
        """dashboard.images' checks and decode with this server's limits (pixels, aspect ratio)."""
        return load_image(data, max_pixels=self.settings.max_pixels, filename=filename,
                          max_aspect_ratio=MAX_ASPECT_RATIO)

    def _model_choices(self, keys: Sequence[str], runtime: str | None) -> list[str]:
        """Model-cache keys ("KEY" or "KEY@RUNTIME") of ``keys``, all checked before any model loads;
        the same model on two runtimes stays two choices, the same pair twice is one."""
        return list(dict.fromkeys(join_choice(spec.key, rt) for spec, rt in (self.choice(k, runtime) for k in keys)))

    def _classify_image(self, image: Image.Image, cache_key: str, top_k: int, key: tuple) -> Classification:
        """One decoded image through the batcher, remembered under ``key`` in the result cache."""
        cached = self._recall(key, top_k)
        if cached is not None:
            return cached
        classifier, load = self.cache.get(cache_key)
        batch, preprocess_ms = classifier.timed_preprocess([image])
        result = Classification(self._batches.run(classifier, batch, top_k, preprocess_ms), classifier.info, load)
        self._remember(key, result)
        return result

    # --- explanations (heatmaps) ----------------------------------------------------------
    def explain(
        self, source: ImageSource | None, key: str, target: Target = None, method: str | None = None,
        *, opacity: float | None = None, filename: str | None = None, runtime: str | None = None,
    ) -> Explanation:
        """Where one model looks in the image for class ``target`` (index or label; None = top-1).

        ``method``: gradcam, gradcam++, eigencam (CNNs and ViTs), rollout (ViTs); None or
        "auto" is the family's default (Grad-CAM for CNNs, rollout for ViTs).
        """
        return self.explain_models(source, [key], method, target=target, opacity=opacity,
                                   filename=filename, runtime=runtime)[0]

    def explain_models(
        self, source: ImageSource | None, keys: Sequence[str], method: str | None = None, *,
        target: Target = None, opacity: float | None = None, filename: str | None = None,
        runtime: str | None = None,
    ) -> list[Explanation]:
        """One explanation per model, the image read and decoded once. Runs on each model's
        explainer copy, never on the classification fast path. Only the PyTorch runtime explains
        (``runtime`` or a "KEY@RUNTIME" key naming another is refused, see below)."""
        from dashboard.explain.record import DEFAULT_OPACITY

        opacity = DEFAULT_OPACITY if opacity is None else float(opacity)
        if not 0.0 <= opacity <= 1.0:  # NaN fails too
            raise ExplainError(f"The heatmap opacity must be between 0 and 1 (got {opacity:g}).")
        from dashboard.explain.record import resolve_method

        data, filename = read_source(source, filename)
        specs = [self.explainable_spec(key, runtime) for key in keys]
        for spec in specs:  # before any model loads
            resolve_method(method, spec.family, spec.display_name)
        # like classification: a bad image is refused before any model loads
        image = self._checked_image(data, filename).image
        explainers = [self.explainer(spec.key) for spec in specs]
        for explainer in explainers:
            explainer.target(target)
        return [e.explain(image, target, method, opacity) for e in explainers]

    def explainable_spec(self, key: str, runtime: str | None) -> ModelSpec:
        """The spec of a model to explain. Refused rather than silently explained with PyTorch: a
        heatmap labelled "ONNX Runtime int8" would claim to show the quantised model, whose answer
        can differ, while Grad-CAM and rollout need PyTorch's hooks and gradients (an ONNX Runtime
        session has neither)."""
        spec, runtime = self.choice(key, runtime)
        if runtime != PYTORCH:
            raise ExplainError(
                f"Heatmaps are computed with PyTorch only: {DISPLAY_NAMES.get(runtime, runtime)} has no gradients "
                f"or attention maps to read. Choose the PyTorch runtime to see where {spec.display_name} looks "
                "(the same weights).")
        return spec

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

    # --- evaluation on labelled images (dashboard/evaluate) -----------------------------------
    def evaluate(self, source: str | os.PathLike, models: Sequence[str | Classifier], **options) -> EvaluationReport:
        """Accuracy of 1-4 models (registry keys, or Classifier objects built by the caller) on a
        labelled folder, .zip or CSV. Options: batch_size, limit, engine ("local" | "ray"),
        address, progress (called with an evaluate.engine.Progress), cancel (a threading.Event,
        checked after each batch), gallery_size, upload (True: a visitor's file, only a .zip is
        accepted), runtime (default pytorch; a key may be "KEY@RUNTIME" itself). See
        dashboard.evaluate.runner.evaluate."""
        from dashboard.evaluate.runner import evaluate

        return evaluate(self, source, models, **options)

    def _recall(self, key: tuple, top_k: int) -> Classification | None:
        """A remembered answer for ``key`` (image and model, never top-k: the full distribution is
        kept, so another top-k is sliced from it without a forward pass)."""
        with self._results_lock:
            hit = self._results.get(key)
            if hit is None:
                return None
            self._results.move_to_end(key)
        return Classification(hit.prediction.with_top_k(top_k), hit.info, LoadInfo(True, 0.0), repeated=True,
                              expected=hit.expected)

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

    def model_view(self, source: ImageSource | None, key: str, runtime: str | None = None,
                   filename: str | None = None) -> tuple[Image.Image, ModelInfo]:
        """What a model sees of the image: its own resize and crop (e.g. 224x224), un-normalised;
        with the model's info (name, input size). The image is checked like any upload first."""
        self.choice(key, runtime)  # an unknown model or runtime is refused before the image is read
        data, filename = read_source(source, filename)
        image = self._checked_image(data, filename).image
        classifier, _ = self.model(key, runtime)
        return classifier.model_view(image), classifier.info

    # --- the upload check (issue 9, item 8) ------------------------------------------------
    def check_image(self, source: ImageSource | None, filename: str | None = None) -> str:
        """Run dashboard.images' checks on an upload without any model; return a one-line
        description ("JPEG, 640×480"). Raises the same DashboardError as classification would:
        the header checks (format, pixel count, aspect) come before any decoding, so a
        decompression bomb is refused from its header."""
        data, filename = read_source(source, filename)
        clean = self._checked_image(data, filename)
        width, height = clean.source_size
        return f"{clean.source_format}, {width}×{height}"


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
