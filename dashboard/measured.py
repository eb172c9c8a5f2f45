"""Latencies measured on this server, per model: the recent ones, summarised by their median."""

from __future__ import annotations

import statistics
import threading
from collections import deque


class MeasuredLatency:
    """The last ``window`` fresh (not result-cache) total times per model key, thread-safe."""

    def __init__(self, window: int = 50) -> None:
        self._window = window
        self._samples: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, key: str, total_ms: float) -> None:
        with self._lock:
            self._samples.setdefault(key, deque(maxlen=self._window)).append(total_ms)

    def medians(self) -> dict[str, float]:
        """key -> median total ms, for every model measured so far."""
        with self._lock:
            return {key: statistics.median(s) for key, s in self._samples.items() if s}
