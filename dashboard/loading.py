"""Warm start: load the default models in the background once the page is served, and tell a
person what a request is waiting for (a first load, or a background load already under way),
with load times measured on this server rather than a promise."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dashboard.errors import DashboardError

if TYPE_CHECKING:
    from dashboard.service import ClassificationService

log = logging.getLogger(__name__)


class BackgroundPreload:
    """Loads ``keys`` one after the other in a daemon thread; failures are logged, never raised
    (the request that needs a failed model retries the load and reports the reason itself)."""

    def __init__(self, service: ClassificationService, keys: Sequence[str], after_url: str | None = None,
                 grace_s: float = 0.0) -> None:
        self.service = service
        self.keys = list(keys)
        self.after_url = after_url
        self.grace_s = grace_s
        self.done = threading.Event()
        self.errors: dict[str, str] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> BackgroundPreload:
        self._thread = threading.Thread(target=self._run, name="background-preload", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            if self.after_url:
                _wait_until_served(self.after_url)
            # importing torch holds the GIL for seconds: let the first visitors' page loads go first
            time.sleep(self.grace_s)
            for key in self.keys:
                try:
                    spec = self.service.spec(key)
                    _, info = self.service.cache.get(spec.key, background=True)
                    log.info("background preload: %s %s", key,
                             "already loaded" if info.cached else f"loaded in {info.load_ms / 1e3:.1f} s")
                except DashboardError as exc:
                    self.errors[key] = str(exc)
                    log.warning("background preload of %s failed: %s", key, exc)
                except Exception as exc:  # never take the server down from a background thread
                    self.errors[key] = f"{type(exc).__name__}: {exc}"
                    log.exception("background preload of %s failed", key)
        finally:
            self.done.set()


def _wait_until_served(url: str, timeout_s: float = 60.0) -> None:
    """Ask for the page once, so that the preload starts only after it has been served."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                response.read()
                return
        except OSError:
            time.sleep(0.2)


def start_background_preload(service: ClassificationService, keys: Sequence[str], after_url: str | None = None,
                             grace_s: float = 1.0) -> BackgroundPreload:
    """Load ``keys`` in a background thread, once ``after_url`` (the page) has answered and
    ``grace_s`` later; returns the handle (``.done`` is set when finished)."""
    log.info("background preload of %s started", ", ".join(keys))
    return BackgroundPreload(service, keys, after_url, grace_s).start()


def _seconds(ms: float) -> str:
    return f"{ms / 1e3:.1f} s"


def load_notice(service: ClassificationService, keys: Sequence[str]) -> str | None:
    """What the models in ``keys`` that are not loaded yet will make a request wait for, or None.

    Times are those measured in this process: the last load of the same model when there was
    one (it was evicted since), else the range of the other loads so far; the first load of a
    process also imports PyTorch, which is said when nothing was timed yet.
    """
    cache = service.cache
    measured = dict(cache.load_ms)
    parts = []
    for key in dict.fromkeys(keys):
        spec = service.spec(key)
        if cache.is_loaded(spec.key):
            continue
        name = spec.display_name
        if spec.key in measured:
            estimate = f"about {_seconds(measured[spec.key])} on this server"
        elif measured:
            low, high = min(measured.values()), max(measured.values())
            estimate = (f"not loaded here before; other models took {_seconds(low)}"
                        + ("" if high - low < 100 else f" to {_seconds(high)}") + " on this server")
        else:
            estimate = "the first model load on this server, which also imports PyTorch; not timed here yet"
        state = cache.loading_since(spec.key)
        if state is None:
            parts.append(f"Loading {name} (first use; {estimate})")
        else:
            started, background = state
            who = "in the background since the server started" if background else "for another request"
            parts.append(f"Waiting for {name}, which is already loading {who} "
                         f"({time.monotonic() - started:.0f} s so far; {estimate})")
    return "; ".join(parts) + "…" if parts else None
