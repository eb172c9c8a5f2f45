"""Small helpers shared by the benchmark modules: clocks, medians, distinct test images."""

from __future__ import annotations

import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "assets" / "examples" / "cat.jpg"


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """(fn's result, wall milliseconds)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, ms_since(start)


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def distinct_images(source: Path, folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEGs of the same size as ``source``, each with a random 16x16 patch painted in
    its central half, so that their bytes differ (the result cache cannot answer) and so do the
    model inputs after the centre crop (a browser sees a new Label), while decoding costs the same."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with Image.open(source) as im:
        base = np.asarray(im.convert("RGB")).copy()
    h, w = base.shape[:2]
    paths = []
    for i in range(count):
        arr = base.copy()
        y, x = int(rng.integers(h // 4, 3 * h // 4 - 16)), int(rng.integers(w // 4, 3 * w // 4 - 16))
        arr[y:y + 16, x:x + 16] = rng.integers(0, 256, size=3, dtype=np.uint8)
        path = folder / f"img-{i:03d}.jpg"
        Image.fromarray(arr).save(path, quality=90)
        paths.append(path)
    return paths


class ForeignLoad:
    """CPU time used by processes outside this benchmark's process tree while it runs.

    On a small machine another job's CPU use changes every number here; the report says how
    much there was. Processes that start and end between the two snapshots are missed."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._start = time.monotonic()
        self._before = self._snapshot()

    def _ours(self) -> set[int]:
        me = self._psutil.Process()
        return {me.pid, *(c.pid for c in me.children(recursive=True))}

    def _snapshot(self) -> dict[tuple[int, float], tuple[str, float]]:
        ours, out = self._ours(), {}
        for p in self._psutil.process_iter(["pid", "name", "create_time", "cpu_times"]):
            info = p.info
            if info["pid"] in ours or info["cpu_times"] is None:
                continue
            cpu = info["cpu_times"].user + info["cpu_times"].system
            out[(info["pid"], info["create_time"])] = (info["name"] or "?", cpu)
        return out

    def result(self) -> dict:
        """Foreign CPU seconds, as a share of the machine's capacity over the run, and the top users."""
        import os

        after, wall = self._snapshot(), time.monotonic() - self._start
        used: dict[str, float] = {}
        for key, (name, cpu) in after.items():
            delta = cpu - self._before.get(key, (name, 0.0))[1]
            if delta > 0:
                used[name] = used.get(name, 0.0) + delta
        total = sum(used.values())
        cores = len(os.sched_getaffinity(0))
        top = sorted(used.items(), key=lambda kv: -kv[1])[:3]
        return {"cpu_s": total, "share": total / (wall * cores), "wall_s": wall,
                "top": [(name, round(cpu, 1)) for name, cpu in top]}


class ImagePool:
    """Hands out each distinct image once (so no request is ever a repeat)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(paths)
        self._next = 0

    def take(self, n: int = 1) -> list[Path]:
        if self._next + n > len(self._paths):
            raise RuntimeError("benchmark ran out of distinct images; raise the pool size")
        out = self._paths[self._next:self._next + n]
        self._next += n
        return out

    def one(self) -> Path:
        return self.take(1)[0]


def run_together(target: Callable[..., Any], args_list: Sequence[tuple], barrier: threading.Barrier) -> float:
    """One thread per argument tuple; ``target`` waits on ``barrier`` (parties: threads + 1) so all
    start together; returns the seconds from that release until every thread has finished."""
    threads = [threading.Thread(target=target, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def peak_rss_growth_mb(run: Callable[[], Any]) -> float:
    """Peak resident memory of this process during ``run()`` minus the resident memory just
    before, in MB (sampled every 5 ms in a thread)."""
    import psutil

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        stop.set()
        sampler.join()
    return (peak[0] - base) / 2**20


def stop_process(proc) -> None:
    """SIGINT a server subprocess, then kill it if it has not exited within 15 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)

