"""Load and soak runs against the dashboard served in this process; prints two tables.

Usage (from the repository root, in the project's virtual environment)::

    python benchmarks/load_soak.py                          # 50 clients x 5 requests, then 1,000 sequential
    python benchmarks/load_soak.py --clients 10 --requests 3 --soak 100    # the sizes of tests/test_load.py

It never touches the network: random-init checkpoints of squeezenet1_1 and
facebook/deit-tiny-patch16-224 (the two fastest models) are written into a temporary
``TORCH_HOME``/``HF_HOME``, and ``GRADIO_TEMP_DIR`` points at a fresh folder so that the
temporary files counted are this script's only. Each part gets its own server, in this process
(so that its memory and threads can be read), with the result cache off (every request is a real
inference): the load server keeps the production ``delete_cache`` (600 s, 3600 s); the soak
server's is shortened to ``--cleanup FREQ AGE`` seconds, so that a short run shows the plateau.
Progress goes to stderr, the two tables to stdout; the exit status is 1 when a check fails.

**Load**: every client has its own gradio_client session and its own image, and sends its
requests one after the other, rotating over ``/classify_resnet``, ``/classify_vit`` and
``/compare``; all clients start together. Each answer must equal the sequential answer for
the same image and endpoint (so simultaneous calls, merged into shared forward passes, give the
sequential predictions and no answer leaks to another session). Latency is reported as
p50/p95 per endpoint; it is a figure, not a pass/fail criterion.

**Soak**: ``--soak`` sequential requests, each with a new image, rotating over the endpoints.
Resident memory, the thread count and the temporary files are sampled every 10%; the run
passes when memory grows less than ``--rss-growth-mb`` between 20% and 100%, the thread count
grows by at most 5, and every temporary file is deleted within one cleanup period afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESNET, VIT = "squeezenet1_1", "facebook/deit-tiny-patch16-224"
TOP_K = 3
ENDPOINTS = ("/classify_resnet", "/classify_vit", "/compare")
SOAK_CLEANUP = (2, 4)  # delete_cache (frequency, age) in seconds for the soak server
RSS_GROWTH_MB = 50.0  # allowed between 20% and 100% of a soak
THREAD_GROWTH = 5
MB = 2**20

Answer = tuple[tuple[tuple[str, float], ...], ...]  # per model: (label, probability) for the top-k


# --- one request --------------------------------------------------------------------------
def arguments(endpoint: str, image) -> tuple:
    return {
        "/classify_resnet": (image, RESNET, TOP_K),
        "/classify_vit": (image, VIT, "", TOP_K),
        "/compare": (image, [RESNET, VIT], TOP_K),
    }[endpoint]


def answer_of(endpoint: str, output: Sequence) -> Answer:
    """The predictions in an endpoint's output, without timings (which always differ)."""
    labels = [output[0]] if endpoint != "/compare" else [u["value"] for u in output[:4] if u.get("visible")]
    return tuple(tuple((c["label"], c["confidence"]) for c in label["confidences"]) for label in labels)


def same_answer(a: Answer, b: Answer, rel: float = 1e-4) -> bool:
    """Same labels in the same order; probabilities equal up to float noise of batched forwards."""
    if len(a) != len(b):
        return False
    for ma, mb in zip(a, b):
        if [label for label, _ in ma] != [label for label, _ in mb]:
            return False
        if any(abs(pa - pb) > rel * max(abs(pa), abs(pb)) for (_, pa), (_, pb) in zip(ma, mb)):
            return False
    return True


def ask(client, endpoint: str, image_path: Path) -> tuple[Answer, float]:
    from gradio_client import handle_file

    start = time.perf_counter()
    output = client.predict(*arguments(endpoint, handle_file(str(image_path))), api_name=endpoint)
    return answer_of(endpoint, output), time.perf_counter() - start


def connect(url: str):
    from gradio_client import Client

    # download_files=False: the compare CSV stays on the server, nothing is written client-side
    return Client(url, verbose=False, download_files=False)


def noise_images(folder: Path, count: int, seed: int = 0, size: int = 48) -> list[Path]:
    """``count`` distinct random-noise PNGs: random-init models give each a different answer."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"noise-{seed}-{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


# --- load ---------------------------------------------------------------------------------
def reference_answers(url: str, images: Sequence[Path]) -> dict[tuple[int, str], Answer]:
    """Every image on every endpoint, one request at a time."""
    client = connect(url)
    return {(i, endpoint): ask(client, endpoint, image)[0]
            for i, image in enumerate(images) for endpoint in ENDPOINTS}


@dataclass
class LoadReport:
    clients: int
    requests: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    answers: list[tuple[int, str, Answer]] = field(default_factory=list)  # (client, endpoint, answer)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def mismatches(self, reference: dict[tuple[int, str], Answer]) -> list[str]:
        """Answers that differ from the sequential answer for the same image and endpoint."""
        return [f"client {i} {endpoint}: not the sequential answer" for i, endpoint, answer in self.answers
                if not same_answer(answer, reference[i, endpoint])]

    def problems(self, reference: dict[tuple[int, str], Answer]) -> list[str]:
        """Errors, requests that did not complete, and answers that are not the sequential ones
        (also when two images share an answer: a leak between them could not be seen)."""
        found = list(self.errors) + self.mismatches(reference)
        if len(self.answers) != self.clients * self.requests:
            found.append(f"only {len(self.answers)} of {self.clients * self.requests} requests completed")
        for endpoint in ENDPOINTS:
            answers = [reference[i, endpoint] for i in range(self.clients)]
            found += [f"images {i} and {j} get the same answer on {endpoint}" for i in range(self.clients)
                      for j in range(i + 1, self.clients) if same_answer(answers[i], answers[j])]
        return found

    def table(self) -> str:
        rows = ["| endpoint | requests | p50 ms | p95 ms | max ms |", "|---|---:|---:|---:|---:|"]
        everything = [s for values in self.latencies.values() for s in values]
        for name, values in [*self.latencies.items(), ("all", everything)]:
            if values:
                rows.append(f"| {name} | {len(values)} | {percentile(values, 50) * 1e3:.0f} | "
                            f"{percentile(values, 95) * 1e3:.0f} | {max(values) * 1e3:.0f} |")
        rows.append(f"\n{self.clients} clients x {self.requests} requests in {self.wall_s:.1f} s "
                    f"({len(everything) / self.wall_s:.1f} requests/s), {len(self.errors)} errors")
        return "\n".join(rows)


def run_load(url: str, images: Sequence[Path], requests: int) -> LoadReport:
    """One client per image, all started together; client i sends ``requests`` requests."""
    report = LoadReport(len(images), requests)
    lock = threading.Lock()
    ready = threading.Barrier(len(images) + 1)

    def client_run(i: int) -> None:
        try:
            client = connect(url)
        except Exception as exc:  # noqa: BLE001 - reported, never lost
            with lock:
                report.errors.append(f"client {i} could not connect: {exc!r}")
            ready.wait()
            return
        ready.wait()
        for j in range(requests):
            endpoint = ENDPOINTS[(i + j) % len(ENDPOINTS)]
            try:
                answer, seconds = ask(client, endpoint, images[i])
            except Exception as exc:  # noqa: BLE001
                with lock:
                    report.errors.append(f"client {i} {endpoint}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                report.latencies[endpoint].append(seconds)
                report.answers.append((i, endpoint, answer))

    from benchmarks.util import run_together  # the script puts the repository on sys.path first

    report.wall_s = run_together(client_run, [(i,) for i in range(len(images))], ready)
    return report


# --- soak ---------------------------------------------------------------------------------
class TempFiles:
    """Files under a temporary folder, less those it held when this object was made."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._baseline = self._paths()

    def _paths(self) -> set[str]:
        return {os.path.join(top, name) for top, _, names in os.walk(self.folder) for name in names}

    def count(self) -> int:
        return len(self._paths() - self._baseline)


@dataclass(frozen=True)
class Sample:
    done: int
    rss_mb: float
    threads: int
    temp_files: int


@dataclass
class SoakReport:
    samples: list[Sample]
    latencies: list[float]
    errors: list[str]
    files_after_cleanup: int = -1

    def at(self, fraction: float) -> Sample:
        """The first sample taken once ``fraction`` of the requests were done."""
        total = self.samples[-1].done
        return next(s for s in self.samples if s.done >= fraction * total)

    @property
    def rss_growth_mb(self) -> float:
        return self.at(1.0).rss_mb - self.at(0.2).rss_mb

    @property
    def thread_growth(self) -> int:
        return self.at(1.0).threads - self.at(0.2).threads

    def problems(self, rss_growth_mb: float = RSS_GROWTH_MB, thread_growth: int = THREAD_GROWTH) -> list[str]:
        found = list(self.errors)
        if self.rss_growth_mb >= rss_growth_mb:
            found.append(f"RSS grew {self.rss_growth_mb:.1f} MB between 20% and 100%")
        if self.thread_growth > thread_growth:
            found.append(f"the thread count grew by {self.thread_growth}")
        if self.files_after_cleanup:
            found.append(f"{self.files_after_cleanup} temporary files outlived the cleanup")
        return found

    def table(self) -> str:
        rows = ["| requests done | RSS MB | threads | temporary files |", "|---:|---:|---:|---:|"]
        rows += [f"| {s.done} | {s.rss_mb:.0f} | {s.threads} | {s.temp_files} |" for s in self.samples]
        p50, p95 = (percentile(self.latencies, q) * 1e3 for q in (50, 95))
        rows.append(f"\n{len(self.latencies)} sequential requests, p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                    f"{len(self.errors)} errors; RSS 20%->100%: {self.rss_growth_mb:+.1f} MB; threads "
                    f"20%->100%: {self.thread_growth:+d}; temporary files left one cleanup period after the "
                    f"run: {self.files_after_cleanup}")
        return "\n".join(rows)


def run_soak(url: str, images: Sequence[Path], temp_dir: Path, cleanup: tuple[int, int] = SOAK_CLEANUP,
             on_sample: Callable[[Sample], None] | None = None) -> SoakReport:
    """One request per image, sequentially, rotating over the endpoints; samples every 10%.

    This process must be the server's (memory and threads are read from it), ``temp_dir`` its
    temporary folder and ``cleanup`` its delete_cache. Only files that appear during the run are
    counted (the examples, kept for the app's lifetime, are there before it).
    """
    import psutil

    process, client, temp_files = psutil.Process(), connect(url), TempFiles(temp_dir)
    report = SoakReport([], [], [])
    checkpoints = {max(1, round(len(images) * k / 10)) for k in range(1, 11)}

    def sample(done: int) -> None:
        s = Sample(done, process.memory_info().rss / MB, process.num_threads(), temp_files.count())
        report.samples.append(s)
        if on_sample:
            on_sample(s)

    sample(0)
    for n, image in enumerate(images, start=1):
        endpoint = ENDPOINTS[n % len(ENDPOINTS)]
        try:
            report.latencies.append(ask(client, endpoint, image)[1])
        except Exception as exc:  # noqa: BLE001
            report.errors.append(f"request {n} {endpoint}: {type(exc).__name__}: {exc}")
        if n in checkpoints:
            sample(n)
    frequency, age = cleanup  # files are deleted once older than `age`, at the next sweep
    deadline = time.monotonic() + 3 * (frequency + age)
    while temp_files.count() and time.monotonic() < deadline:
        time.sleep(0.25)
    report.files_after_cleanup = temp_files.count()
    return report


# --- the script ---------------------------------------------------------------------------
@contextlib.contextmanager
def served(cleanup: tuple[int, int]) -> Iterator[str]:
    """A dashboard over the caches in the environment, result cache off; yields its URL."""
    from dashboard.app import build_demo, launch_kwargs
    from dashboard.settings import resolve_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = resolve_settings(device="cpu", port=port, result_cache_size=0)
    demo = build_demo(settings, delete_cache=cleanup)
    demo.launch(**launch_kwargs(settings), prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5, help="requests per client")
    parser.add_argument("--soak", type=int, default=1000, help="sequential requests")
    parser.add_argument("--cleanup", type=int, nargs=2, default=SOAK_CLEANUP, metavar=("FREQ", "AGE"),
                        help="the soak server's delete_cache, seconds (default %(default)s)")
    parser.add_argument("--rss-growth-mb", type=float, default=RSS_GROWTH_MB)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="dashboard-load-soak-"))
    os.environ.update({"TORCH_HOME": str(work / "torch"), "HF_HOME": str(work / "hf"), "HF_HUB_OFFLINE": "1",
                       "GRADIO_TEMP_DIR": str(work / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"})
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dashboard import random_weights
    from dashboard.app import DELETE_CACHE

    random_weights.write_torchvision_checkpoint(RESNET, work / "torch")
    random_weights.write_hub_checkpoint(VIT, work / "hf", tiny=True)
    failures = []

    with served(DELETE_CACHE) as url:
        images = noise_images(work / "images", args.clients, seed=1)
        reference = reference_answers(url, images)
        load = run_load(url, images, args.requests)
    equal = len(load.answers) - len(load.mismatches(reference))
    print(f"## Load: {args.clients} concurrent clients x {args.requests} requests\n\n{load.table()}\n"
          f"answers equal to the sequential answers: {equal}/{len(load.answers)}\n")
    failures += load.problems(reference)

    cleanup = tuple(args.cleanup)
    with served(cleanup) as url:
        images = noise_images(work / "soak", args.soak, seed=2, size=32)
        soak = run_soak(url, images, work / "gradio", cleanup,
                        on_sample=lambda sample: print(f"  soak {sample}", file=sys.stderr))
    print(f"## Soak: {args.soak} sequential requests (delete_cache={cleanup})\n\n{soak.table()}")
    failures += soak.problems(args.rss_growth_mb)
    print("\nFAILED:\n  " + "\n  ".join(failures[:20]) if failures else "\nAll load and soak checks passed.")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
