"""A classifier in three timed stages: preprocess -> forward -> postprocess."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.errors import InferenceError

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # torch is imported lazily: `import dashboard` must stay cheap
    import torch
    from PIL import Image


@dataclass(frozen=True)
class ModelInfo:
    """What the UI shows about a loaded model (the one-line model card)."""

    key: str
    display_name: str
    backend: str
    num_params: int
    weight_bytes: int
    input_size: tuple[int, int]
    weights_id: str
    num_classes: int
    runtime: str = "pytorch"  # dashboard.models.runtimes.RUNTIMES
    file_bytes: int | None = None  # the exported .onnx file's size (ONNX runtimes only)
    runtime_note: str = ""  # e.g. int8 agreement with fp32, shown in the model card

    @property
    def cache_key(self) -> str:
        """The key of this (model, runtime) in the model cache: "KEY" or "KEY@RUNTIME"."""
        return self.key if self.runtime == "pytorch" else f"{self.key}@{self.runtime}"


@dataclass(frozen=True)
class ClassScore:
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class StageTimes:
    preprocess_ms: float
    forward_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.forward_ms + self.postprocess_ms


@dataclass(frozen=True)
class Prediction:
    """Top-k classes (by index, labels attached last), the full distribution and stage times."""

    model_key: str
    top: tuple[ClassScore, ...]
    probabilities: np.ndarray  # softmax over every class, float32, index-aligned with `labels`
    labels: tuple[str, ...]
    times: StageTimes
    num_params: int
    device: str
    batch_size: int = 1  # requests merged into the forward pass that produced this prediction

    def label_dict(self) -> dict[str, float]:
        """{label: probability} for the top-k, as gr.Label expects."""
        return {score.label: score.probability for score in self.top}

    def with_top_k(self, top_k: int) -> "Prediction":
        """The same prediction with another k, taken from the full distribution (no forward pass);
        itself when k is unchanged. Ties are broken as in Classifier.postprocess (torch.topk)."""
        import torch

        k = max(1, min(int(top_k), len(self.labels)))
        if k == len(self.top):
            return self
        top_p, top_i = torch.tensor(self.probabilities).topk(k)  # a copy: the array may be read-only
        top = tuple(ClassScore(int(i), self.labels[int(i)], float(p)) for i, p in zip(top_i, top_p))
        return replace(self, top=top)


def unique_labels(names: Sequence[str]) -> tuple[str, ...]:
    """Labels with duplicates told apart by their index ("crane (134)", "crane (517)")."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return tuple(f"{name} ({i})" if counts[name] > 1 else name for i, name in enumerate(names))


class Classifier:
    """One loaded model. Thread-safe for inference: it holds no per-call state."""

    def __init__(
        self,
        info: ModelInfo,
        model: torch.nn.Module,
        transform: Callable[[list[Image.Image]], torch.Tensor],
        labels: Sequence[str],
        device: torch.device,
        logits_of: Callable[[Any], torch.Tensor] = lambda output: output,
        normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> None:
        """``normalization``: the (mean, std) per channel that ``transform`` ends with, if any;
        model_view undoes it to show the input as an image."""
        self.info = info
        self.normalization = normalization
        self.model = model
        self.labels = unique_labels(labels)
        self.device = device
        self.device_label = str(device)  # what Prediction.device says (a runtime may add its provider)
        self._transform = transform
        self._logits_of = logits_of

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The model's own recipe (weights.transforms() / image processor), batched, on device."""
        return self._transform(list(images)).to(self.device, non_blocking=True)

    def model_view(self, image: Image.Image) -> Image.Image:
        """What the model is given for ``image``: its own preprocessing (resize, crop), with the
        final normalisation undone so that the tensor can be shown as an RGB image."""
        from PIL import Image as PILImage

        pixels = self._transform([image])[0].detach().float().cpu().numpy()  # (3, H, W)
        if self.normalization is not None:
            mean, std = (np.asarray(v, dtype=np.float32).reshape(-1, 1, 1) for v in self.normalization)
            pixels = pixels * std + mean
        rgb = (np.clip(pixels, 0.0, 1.0).transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
        return PILImage.fromarray(rgb, "RGB")

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            return self._logits_of(self.model(batch))

    def postprocess(self, logits: torch.Tensor, top_k: int) -> list[tuple[np.ndarray, list[ClassScore]]]:
        """Softmax over all classes, top-k by index, then labels."""
        import torch

        with torch.inference_mode():
            probs = logits.float().softmax(dim=-1)
            k = max(1, min(int(top_k), probs.shape[-1]))
            top_p, top_i = probs.topk(k, dim=-1)
            probs_np, top_p_np, top_i_np = (t.cpu().numpy() for t in (probs, top_p, top_i))
        results = []
        for row, ps, idx in zip(probs_np, top_p_np, top_i_np):
            scores = [ClassScore(int(i), self.labels[int(i)], float(p)) for i, p in zip(idx, ps)]
            results.append((row, scores))
        return results

    def classify(self, image: Image.Image, top_k: int = 3) -> Prediction:
        return self.classify_batch([image], top_k)[0]

    def classify_batch(self, images: Sequence[Image.Image], top_k: int = 3) -> list[Prediction]:
        """All three stages on several images in one pass; each gets the batch's stage times."""
        batch, preprocess_ms = self.timed_preprocess(images)
        return self.predict(batch, [top_k] * len(images), [preprocess_ms] * len(images))

    def timed_preprocess(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, float]:
        """Stage 1 alone, so that it can run in the request's thread while forwards are batched."""
        with self._curated_errors():
            start = time.perf_counter()
            batch = self.preprocess(images)
            self._sync()
        return batch, (time.perf_counter() - start) * 1e3

    def predict(
        self, batch: torch.Tensor, top_ks: Sequence[int], preprocess_ms: Sequence[float]
    ) -> list[Prediction]:
        """Stages 2 and 3 on a (possibly merged) batch: one Prediction per row, with its own top-k."""
        with self._curated_errors():
            t1 = time.perf_counter()
            logits = self.forward(batch)
            self._sync()
            t2 = time.perf_counter()
            rows = self.postprocess(logits, max(top_ks))
            t3 = time.perf_counter()
        forward_ms, postprocess_ms = (t2 - t1) * 1e3, (t3 - t2) * 1e3
        return [
            Prediction(self.info.key, tuple(scores[: max(1, k)]), probs, self.labels,
                       StageTimes(pre_ms, forward_ms, postprocess_ms), self.info.num_params,
                       self.device_label, batch_size=len(rows))
            for (probs, scores), k, pre_ms in zip(rows, top_ks, preprocess_ms)
        ]

    @contextlib.contextmanager
    def _curated_errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # a model failure must not take the server down
            log.exception("%s failed during inference", self.info.key)
            # the exception's own text stays in the server log: it can name server internals
            raise InferenceError(
                f"{self.info.display_name} failed on this image. Try another image or model."
            ) from exc

    def warm_up(self) -> None:
        """One forward pass on a blank batch, so a user's first request is not the slow one."""
        import torch

        height, width = self.info.input_size
        self.forward(torch.zeros(1, 3, height, width, device=self.device))
        self._sync()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
