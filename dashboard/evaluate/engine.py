"""The local engine: stream a dataset through 1-4 classifiers in batches, decoding ahead in threads.

Images are read and decoded by a small thread pool at most ``prefetch`` images ahead of the
batch being run, so memory holds about one batch plus the prefetch window whatever the size of
the dataset. Each batch goes through each classifier's own preprocess -> forward -> postprocess
(the same ``Classifier`` code the app uses); the cancel event is checked after every batch.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashboard.errors import ImageInputError
from dashboard.evaluate.datasets import Dataset, Entry
from dashboard.evaluate.labels import match_classes
from dashboard.evaluate.metrics import TOP_K, EvaluationReport, GalleryItem, ModelSide, Tally
from dashboard.images import MAX_ASPECT_RATIO, load_image

if TYPE_CHECKING:
    from PIL import Image

    from dashboard.models.classifier import Classifier

THUMBNAIL = 160


@dataclass(frozen=True)
class Progress:
    """How far a run is: entries consumed (images and skipped files) out of those planned."""

    done: int
    total: int
    elapsed_s: float

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_s(self) -> float | None:
        if self.done <= 0 or self.total <= self.done:
            return None if self.done <= 0 else 0.0
        return self.elapsed_s / self.done * (self.total - self.done)

    def describe(self) -> str:
        eta = "" if self.eta_s is None else f", about {self.eta_s:.0f} s left"
        return f"{self.done:,} of {self.total:,} images{eta}"


ProgressFn = Callable[[Progress], None]


def model_sides(classifiers: Sequence[Classifier], classes: Sequence[str]) -> list[ModelSide]:
    """The tally's view of each model, keyed "KEY" (PyTorch) or "KEY@RUNTIME" (ONNX Runtime ...)."""
    return [ModelSide(c.info.cache_key, c.info.display_name, tuple(c.labels), match_classes(classes, c.labels),
                      c.info.runtime) for c in classifiers]


def decode(dataset: Dataset, entry: Entry, max_pixels: int) -> Image.Image:
    """One entry through dashboard.images, like any upload."""
    return load_image(dataset.read(entry), max_pixels=max_pixels, filename=entry.name,
                      max_aspect_ratio=MAX_ASPECT_RATIO).image


def decoded_stream(dataset: Dataset, entries: Sequence[Entry], max_pixels: int, *, prefetch: int,
                   workers: int, skipped: list[tuple[str, str]]) -> Iterator[tuple[Entry, Image.Image | None]]:
    """(entry, image) in dataset order, decoded at most ``prefetch`` ahead; an image that
    dashboard.images refuses comes as (entry, None) and is added to ``skipped`` with the reason."""
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="evaluate-decode")
    pending: deque[tuple[Entry, Future]] = deque()
    it = iter(entries)
    try:
        for entry in it:
            pending.append((entry, pool.submit(decode, dataset, entry, max_pixels)))
            if len(pending) >= max(1, prefetch):
                break
        while pending:
            entry, future = pending.popleft()
            following = next(it, None)
            if following is not None:
                pending.append((following, pool.submit(decode, dataset, following, max_pixels)))
            try:
                image = future.result()
            except ImageInputError as exc:
                skipped.append((entry.name, str(exc)))
                image = None
            yield entry, image
    finally:  # a cancelled run stops here: drop what was queued, wait for what is running
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def run_batch(classifiers: Sequence[Classifier], images: Sequence[Image.Image]
              ) -> tuple[list[list[tuple[int, ...]]], list[float]]:
    """Every classifier on one batch: top-5 indices per model per image, and ms per image per model."""
    tops, ms = [], []
    for classifier in classifiers:
        batch, preprocess_ms = classifier.timed_preprocess(images)
        predictions = classifier.predict(batch, [TOP_K] * len(images), [preprocess_ms] * len(images))
        tops.append([tuple(s.index for s in p.top) for p in predictions])
        ms.append(predictions[0].times.total_ms / len(images))
    return tops, ms


def run_local(dataset: Dataset, classifiers: Sequence[Classifier], *, batch_size: int, max_pixels: int,
              limit: int | None = None, prefetch: int | None = None, decode_workers: int = 2,
              progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> EvaluationReport:
    """Evaluate ``classifiers`` on ``dataset`` in this process."""
    entries = dataset.entries[:limit] if limit else dataset.entries
    tally = Tally(model_sides(classifiers, dataset.classes))
    skipped = list(dataset.skipped)
    started = time.perf_counter()
    done, cancelled = 0, False
    batch: list[tuple[Entry, Image.Image]] = []

    def flush() -> None:
        tops, ms = run_batch(classifiers, [image for _, image in batch])
        for row, (entry, _) in enumerate(batch):
            tally.add(entry.name, entry.label, [t[row] for t in tops], ms)
        batch.clear()

    stream = decoded_stream(dataset, entries, max_pixels, prefetch=prefetch or 2 * batch_size,
                            workers=decode_workers, skipped=skipped)
    try:
        for entry, image in stream:
            done += 1
            if image is not None:
                batch.append((entry, image))
            if len(batch) >= batch_size or done == len(entries):
                if batch:
                    flush()
                if progress is not None:
                    progress(Progress(done, len(entries), time.perf_counter() - started))
                if cancel is not None and cancel.is_set():
                    cancelled = done < len(entries)
                    break
    finally:
        stream.close()
    return tally.report(skipped=skipped, planned=len(entries), cancelled=cancelled,
                        wall_s=time.perf_counter() - started, engine="local", batch_size=batch_size)


def build_gallery(dataset: Dataset, report: EvaluationReport, size: int, max_pixels: int) -> list[GalleryItem]:
    """Thumbnails of the first ``size`` misclassified images, read again from the dataset."""
    by_name = {e.name: e for e in dataset.entries}
    items = []
    for name, true_class, predicted in report.misclassified[:size]:
        try:
            image = decode(dataset, by_name[name], max_pixels)
        except (ImageInputError, KeyError):
            continue
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        items.append(GalleryItem(name, true_class, predicted, image))
    return items
