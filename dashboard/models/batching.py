"""Merge concurrent requests for the same model into one forward pass."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dashboard.models.classifier import Classifier, Prediction

if TYPE_CHECKING:
    import torch


@dataclass(eq=False)
class _Job:
    classifier: Classifier
    batch: torch.Tensor
    top_k: int
    preprocess_ms: float
    done: threading.Event = field(default_factory=threading.Event)
    result: list[Prediction] | None = None  # one per row of ``batch``
    error: BaseException | None = None


class BatchRunner:
    """Runs forward + postprocess for queued requests, several at a time when they overlap.

    Each request preprocesses its image in its own thread and queues the tensor. One worker thread
    per model takes everything queued (up to ``max_batch``) and runs a single forward pass, so a
    lone request waits for nothing and simultaneous ones share the work. ``slots`` bounds how many
    forward passes run at once across all models (torch threads are split between them). A worker
    idle for ``idle_s`` seconds exits; the next request starts a new one.
    """

    def __init__(self, max_batch: int = 8, slots: int = 1, idle_s: float = 30.0) -> None:
        self._max_batch = max(1, max_batch)
        self._slots = threading.BoundedSemaphore(max(1, slots))
        self._idle_s = idle_s
        self._cond = threading.Condition()
        self._queues: dict[str, deque[_Job]] = {}
        self._workers: dict[str, threading.Thread] = {}

    def run(self, classifier: Classifier, batch: torch.Tensor, top_k: int, preprocess_ms: float) -> Prediction:
        """Queue one preprocessed image and wait for its prediction (or its error)."""
        return self.run_many(classifier, batch, top_k, preprocess_ms)[0]

    def run_many(
        self, classifier: Classifier, batch: torch.Tensor, top_k: int, preprocess_ms: float
    ) -> list[Prediction]:
        """Queue N preprocessed images as one job: they go through one forward pass together
        (perhaps with other queued jobs), and come back as N predictions, in order."""
        job = _Job(classifier, batch, top_k, preprocess_ms)
        key = getattr(classifier.info, "cache_key", classifier.info.key)  # one worker per (model, runtime)
        with self._cond:
            self._queues.setdefault(key, deque()).append(job)
            if key not in self._workers:
                worker = threading.Thread(target=self._work, args=(key,), name=f"batch:{key}", daemon=True)
                self._workers[key] = worker
                worker.start()
            self._cond.notify_all()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the forward slots outside the queue (fair timing runs its own forwards):
        while held, batched forwards use only the other slots, so cores are never oversubscribed."""
        with self._slots:
            yield

    def worker_count(self) -> int:
        with self._cond:
            return len(self._workers)

    def _work(self, key: str) -> None:
        while True:
            with self._cond:
                queue = self._queues[key]
                if not self._cond.wait_for(lambda: queue, timeout=self._idle_s):
                    del self._queues[key], self._workers[key]
                    return
                jobs = _take(queue, self._max_batch)
            for group in _compatible_groups(jobs):
                self._execute(group)
            # The jobs hold their classifier: an idle worker must not keep an evicted model alive.
            jobs = group = None  # type: ignore[assignment]

    def _execute(self, jobs: list[_Job]) -> None:
        import torch

        try:
            with self._slots:
                batch = jobs[0].batch if len(jobs) == 1 else torch.cat([j.batch for j in jobs])
                rows = [len(j.batch) for j in jobs]
                predictions = jobs[0].classifier.predict(
                    batch, [j.top_k for j, n in zip(jobs, rows) for _ in range(n)],
                    [j.preprocess_ms for j, n in zip(jobs, rows) for _ in range(n)],
                )
            start = 0
            for job, n in zip(jobs, rows):
                job.result, start = predictions[start:start + n], start + n
        except BaseException as exc:  # handed to every waiting request, never lost in this thread
            for job in jobs:
                job.error = exc
        finally:
            for job in jobs:
                job.done.set()


def _take(queue: deque[_Job], max_rows: int) -> list[_Job]:
    """Queued jobs, oldest first, while their rows fit in ``max_rows`` (always at least one job:
    a multi-image job larger than the cap still runs, alone, in one forward)."""
    jobs = [queue.popleft()]
    rows = len(jobs[0].batch)
    while queue and rows + len(queue[0].batch) <= max_rows:
        rows += len(queue[0].batch)
        jobs.append(queue.popleft())
    return jobs


def _compatible_groups(jobs: list[_Job]) -> list[list[_Job]]:
    """Jobs that can share one forward: same loaded model object and same tensor shape."""
    groups: dict[tuple, list[_Job]] = {}
    for job in jobs:
        groups.setdefault((id(job.classifier), tuple(job.batch.shape[1:])), []).append(job)
    return list(groups.values())
