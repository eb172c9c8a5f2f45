"""A lazy, thread-safe, memory-bounded cache of loaded classifiers."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from dashboard.models.classifier import Classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadInfo:
    """How a ``get`` was served: from memory, or by a cold load that took ``load_ms``."""

    cached: bool
    load_ms: float
    waited_ms: float = 0.0  # > 0: this request waited for another request's load of the model

    def describe(self) -> str:
        if self.waited_ms > 0:
            return f"waited {self.waited_ms:.0f} ms for its load"
        return "cached" if self.cached else f"{self.load_ms:.0f} ms"


class ModelCache:
    """Loads each model on first use, exactly once however many threads ask at the same time.

    Failed loads are not cached (the next request retries). When the loaded models' weights
    exceed ``budget_bytes``, the least recently used ones are dropped; the model just asked for
    always stays, even alone over budget.
    """

    def __init__(self, loader: Callable[[str], Classifier], budget_bytes: int) -> None:
        self._loader = loader
        self._budget = budget_bytes
        self._models: OrderedDict[str, Classifier] = OrderedDict()
        self._lock = threading.Lock()  # guards _models, _key_locks, load_ms, evicted
        # one lock per key being loaded, with the number of threads using it; an entry is
        # dropped when its last user leaves, so the table never outgrows the requests in flight
        self._key_locks: dict[str, tuple[threading.Lock, int]] = {}
        self.load_ms: dict[str, float] = {}  # last cold-load time per loaded key
        self.evicted: list[str] = []  # the most recent evictions (at most MAX_EVICTED_LOG)

    MAX_EVICTED_LOG = 100

    def get(self, key: str) -> tuple[Classifier, LoadInfo]:
        """The classifier for ``key``, loading it if needed."""
        with self._lock:
            hit = self._touch(key)
            if hit is not None:
                return hit, LoadInfo(True, 0.0)
            key_lock, users = self._key_locks.get(key, (threading.Lock(), 0))
            self._key_locks[key] = (key_lock, users + 1)
        waited_from = time.perf_counter()
        evicted = False
        try:
            with key_lock:  # one loader per key; other keys load in parallel
                with self._lock:
                    hit = self._touch(key)
                if hit is not None:
                    return hit, LoadInfo(True, 0.0, waited_ms=(time.perf_counter() - waited_from) * 1e3)
                start = time.perf_counter()
                classifier = self._loader(key)
                load_ms = (time.perf_counter() - start) * 1e3
                with self._lock:
                    self._models[key] = classifier
                    self.load_ms[key] = load_ms
                    evicted = self._evict_over_budget(keep=key)
                log.info("loaded %s in %.0f ms", key, load_ms)
                return classifier, LoadInfo(False, load_ms)
        finally:
            with self._lock:
                lock, users = self._key_locks[key]
                if users <= 1:
                    del self._key_locks[key]
                else:
                    self._key_locks[key] = (lock, users - 1)
            if evicted:
                release_memory()

    def lock_table_size(self) -> int:
        """Keys with a load in flight (for tests: the table does not grow with every id tried)."""
        with self._lock:
            return len(self._key_locks)

    def is_loaded(self, key: str) -> bool:
        with self._lock:
            return key in self._models

    def loaded_keys(self) -> list[str]:
        """Loaded keys, least recently used first."""
        with self._lock:
            return list(self._models)

    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(c.info.weight_bytes for c in self._models.values())

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self.load_ms.clear()
        release_memory()

    def _touch(self, key: str) -> Classifier | None:
        classifier = self._models.get(key)
        if classifier is not None:
            self._models.move_to_end(key)
        return classifier

    def _evict_over_budget(self, keep: str) -> bool:
        total = sum(c.info.weight_bytes for c in self._models.values())
        evicted = False
        for key in list(self._models):
            if total <= self._budget:
                break
            if key == keep:
                continue
            total -= self._models.pop(key).info.weight_bytes
            self.load_ms.pop(key, None)
            self.evicted.append(key)
            del self.evicted[:-self.MAX_EVICTED_LOG]
            evicted = True
            log.info("evicted %s to stay within the memory budget", key)
        return evicted


def release_memory() -> None:
    """Give an evicted model's memory back to the system now: collect reference cycles, then ask
    glibc to return freed heap pages (torch tensors below glibc's mmap threshold live on the heap
    and would otherwise keep the process's RSS up). A no-op where there is no glibc."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
