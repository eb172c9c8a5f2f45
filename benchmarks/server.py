"""Sections 2-5: servers in subprocesses, cold start, the Gradio API, throughput, memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.util import ROOT, ImagePool, median, run_together, stop_process, timed

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_200(url: str, deadline: float, proc: subprocess.Popen) -> bool:
    """Poll ``url`` every 20 ms until it answers 200 (False when the process died or time ran out)."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    response.read()
                    return True
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.02)
    return False


@dataclass
class Server:
    """A server in its own process, started by us and stopped by its pid only."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    start_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 120.0) -> float:
        """Start and wait for the first HTTP 200 on /; returns the seconds that took."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([*self.argv, "--port", str(self.port)], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        ok = first_200(self.url, time.monotonic() + timeout_s, self.proc)
        self.start_s = time.perf_counter() - t0
        log.close()
        if not ok:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} did not serve {self.url} within {timeout_s:.0f} s:\n{tail}")
        return self.start_s

    def stop(self) -> None:
        stop_process(self.proc)

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.pid).memory_info().rss / 2**20

    def peak_rss_mb(self) -> float | None:
        """VmHWM: the peak resident set size of the process so far (Linux)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def has_loaded(self, fragment: str) -> bool:
        """Whether a shared library whose path contains ``fragment`` is mapped (e.g. libtorch)."""
        try:
            return fragment in Path(f"/proc/{self.pid}/maps").read_text()
        except OSError:
            return False


def dashboard_server(env: dict[str, str], log_dir: Path) -> Server:
    return Server("python -m dashboard", [sys.executable, "-m", "dashboard"], env, log_dir / "dashboard.log")


def noop_server(env: dict[str, str], log_dir: Path) -> Server:
    return Server("no-op app", [sys.executable, str(BENCH / "noop_app.py")], env, log_dir / "noop.log")


# --- section 2: cold start ---------------------------------------------------------------------------
def import_gradio_s(env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gradio"], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t0


def cold_start(env: dict[str, str], log_dir: Path, repeats: int, log=print) -> tuple[dict, Server]:
    """`python -m dashboard` to the first 200 next to `python -c "import gradio"`, interleaved.

    The last server started is returned still running, for the next sections."""
    import_gradio_s(env)  # untimed: brings gradio's files into the page cache for both
    imports, starts, idle_rss, torch_loaded = [], [], [], []
    server = None
    for i in range(repeats):
        imports.append(import_gradio_s(env))
        server = dashboard_server(env, log_dir)
        starts.append(server.start())
        idle_rss.append(server.rss_mb())
        torch_loaded.append(server.has_loaded("libtorch"))
        log(f"  start {i + 1}/{repeats}: import gradio {imports[-1]:.2f} s, first 200 {starts[-1]:.2f} s")
        if i < repeats - 1:
            server.stop()
    assert server is not None
    return {"import_gradio_s": median(imports), "first_200_s": median(starts),
            "import_samples": imports, "start_samples": starts,
            "idle_rss_mb": idle_rss[-1], "torch_loaded_at_start": any(torch_loaded)}, server


# --- section 3: the Gradio API ----------------------------------------------------------------------
def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def _table(times: dict) -> dict:
    """The latency Dataframe's first row as {column: value}."""
    return dict(zip(times["headers"], times["data"][0]))


def classify_resnet(c, path: Path) -> tuple[dict, float]:
    from gradio_client import handle_file

    (_, times, card), ms = timed(c.predict, handle_file(str(path)), "resnet18", 3,
                                 api_name="/classify_resnet")
    row = _table(times)
    assert "result cache" not in card, "the result cache answered a request meant to be distinct"
    return row, ms


def classify_vit(c, path: Path) -> tuple[dict, float]:
    from gradio_client import handle_file

    (_, times, _), ms = timed(c.predict, handle_file(str(path)), "google/vit-base-patch16-224", "", 3,
                              api_name="/classify_vit")
    return _table(times), ms


def noop(c, path: Path, api_name: str = "/noop") -> float:
    from gradio_client import handle_file

    args = (handle_file(str(path)),) if api_name == "/noop" else (handle_file(str(path)), "resnet18", 3)
    _, ms = timed(c.predict, *args, api_name=api_name)
    return ms


def api_latency(dash: Server, floor: Server, pool: ImagePool, runs: int, warmup: int, log=print) -> dict:
    """First use and warm latency of /classify_resnet, next to the no-op endpoints, interleaved."""
    real, bare = client(dash.url), client(floor.url)
    first_row, first_ms = classify_resnet(real, pool.one())  # loads resnet18 in the server
    log(f"  first /classify_resnet: {first_ms:.0f} ms (server load column: {first_row['load']})")
    rows, real_ms, noop_ms, noop3_ms = [], [], [], []
    for i in range(warmup + runs):
        row, ms = classify_resnet(real, pool.one())
        n1 = noop(bare, pool.one(), "/noop")
        n3 = noop(bare, pool.one(), "/noop_same_io")
        if i >= warmup:
            rows.append(row)
            real_ms.append(ms)
            noop_ms.append(n1)
            noop3_ms.append(n3)
    return {"first_call_ms": first_ms, "first_load": first_row["load"], "classify_ms": median(real_ms),
            "noop_ms": median(noop_ms), "noop_same_io_ms": median(noop3_ms),
            "server_stages_ms": _stages(rows),
            "samples": {"classify": real_ms, "noop": noop_ms, "noop_same_io": noop3_ms}}


def _stages(rows: list[dict]) -> dict:
    """Median server-side stage times from the latency tables that came back."""
    stages = ("preprocess", "forward", "postprocess", "total")
    return {k: median([r[f"{k} ms"] for r in rows]) for k in stages}


# --- section 4: throughput ----------------------------------------------------------------------------
def _gradio_client_caller(url: str):
    c = client(url)

    def call(path: Path) -> float:
        return classify_resnet(c, path)[0]["forward ms"]
    return call


def _raw_caller(url: str):
    c = RawClient(url)

    def call(path: Path) -> float:
        _, times, card = c.call("classify_resnet", [c.upload(path), "resnet18", 3, "pytorch"])
        assert "result cache" not in card
        return _table(times)["forward ms"]
    return call


CALLERS = {"gradio_client": _gradio_client_caller, "plain HTTP": _raw_caller}


def throughput(dash: Server, pool: ImagePool, clients: int, per_client: int, sequential: int,
               rounds: int, kind: str = "gradio_client", log=print) -> dict:
    """Requests/s of `clients` concurrent clients vs one client in sequence (distinct images).

    Each request uploads its file and then calls /classify_resnet, like a user's click would."""
    make = CALLERS[kind]
    seq_call = make(dash.url)
    conc_calls = [make(dash.url) for _ in range(clients)]
    seq_rps, conc_rps, conc_fwd, seq_fwd, conc_lat = [], [], [], [], []
    for r in range(rounds):
        images = pool.take(sequential)
        t0 = time.perf_counter()
        for path in images:
            seq_fwd.append(seq_call(path))
        seq_rps.append(sequential / (time.perf_counter() - t0))

        batches = [pool.take(per_client) for _ in range(clients)]
        barrier = threading.Barrier(clients + 1)
        errors: list[BaseException] = []
        lock = threading.Lock()

        def work(call, paths, barrier=barrier, lock=lock, errors=errors):
            barrier.wait()
            try:
                for path in paths:
                    fwd, ms = timed(call, path)
                    with lock:
                        conc_fwd.append(fwd)
                        conc_lat.append(ms)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        elapsed = run_together(work, list(zip(conc_calls, batches)), barrier)
        conc_rps.append(clients * per_client / elapsed)
        if errors:
            raise errors[0]
        log(f"  {kind} round {r + 1}/{rounds}: sequential {seq_rps[-1]:.2f} req/s, "
            f"{clients} concurrent {conc_rps[-1]:.2f} req/s")
    return {"kind": kind, "sequential_rps": median(seq_rps), "concurrent_rps": median(conc_rps),
            "clients": clients, "requests": {"sequential": sequential, "concurrent": clients * per_client},
            "rounds": rounds,
            "sequential_forward_ms": median(seq_fwd), "concurrent_forward_ms": median(conc_fwd),
            "concurrent_latency_ms": median(conc_lat),
            "samples": {"sequential_rps": seq_rps, "concurrent_rps": conc_rps}}


# --- section 5: memory -----------------------------------------------------------------------------
def memory_with_both_models(dash: Server, pool: ImagePool, vit_calls: int, log=print) -> dict:
    """Load the ViT through the API too (the ResNet is loaded by now), then read RSS and its peak."""
    c = client(dash.url)
    rss_resnet = dash.rss_mb()
    first_row, first_ms = classify_vit(c, pool.one())
    warm = [classify_vit(c, pool.one()) for _ in range(vit_calls)]
    log(f"  first /classify_vit: {first_ms:.0f} ms (server load column: {first_row['load']})")
    return {"rss_after_resnet_mb": rss_resnet, "rss_both_mb": dash.rss_mb(),
            "peak_rss_mb": dash.peak_rss_mb(),
            "vit_first_call_ms": first_ms, "vit_first_load": first_row["load"], "vit_calls": vit_calls,
            "vit_classify_ms": median([ms for _, ms in warm]),
            "vit_forward_ms": median([row["forward ms"] for row, _ in warm])}


def server_env(base: dict[str, str], gradio_tmp: Path) -> dict[str, str]:
    env = dict(base)
    env["GRADIO_TEMP_DIR"] = str(gradio_tmp)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env



# --- a lean HTTP client: the Gradio queue without gradio_client's 50 ms polling ---------------------
class RawClient:
    """Upload with POST /gradio_api/upload, then POST /gradio_api/call/<api> and read its SSE stream
    until `complete` (the documented curl API; same queue and concurrency group as the UI).

    gradio_client reads its message queue with ``time.sleep(0.05)`` between polls
    (gradio_client/utils.py, stream_sse_v1plus), which rounds its latencies up in 50 ms steps;
    this client reads the stream as bytes arrive."""

    def __init__(self, url: str) -> None:
        import httpx

        self.base = url.rstrip("/") + "/gradio_api"
        self.http = httpx.Client(timeout=120)

    def upload(self, path: Path) -> dict:
        response = self.http.post(f"{self.base}/upload",
                                  files=[("files", (path.name, path.read_bytes(), "image/jpeg"))])
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def call(self, api_name: str, data: list):
        import json

        response = self.http.post(f"{self.base}/call/{api_name}", json={"data": data})
        response.raise_for_status()
        event_id = response.json()["event_id"]
        event = None
        with self.http.stream("GET", f"{self.base}/call/{api_name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = json.loads(line[5:])
                    if event == "error":
                        raise RuntimeError(f"/{api_name} failed: {payload}")
                    return payload
        raise RuntimeError(f"/{api_name}: the stream ended without a result")

    def close(self) -> None:
        self.http.close()


def raw_latency(dash: Server, floor: Server, pool: ImagePool, runs: int, warmup: int) -> dict:
    """Upload, then call, timed apart; /classify_resnet next to /noop and /noop_same_io, interleaved."""
    real, bare = RawClient(dash.url), RawClient(floor.url)
    samples: dict[str, list[float]] = {k: [] for k in ("upload", "classify", "noop", "noop_same_io")}
    forward = []
    try:
        for i in range(warmup + runs):
            file, up_ms = timed(real.upload, pool.one())
            (_, times, card), ms = timed(real.call, "classify_resnet", [file, "resnet18", 3, "pytorch"])
            assert "result cache" not in card
            n1 = timed(bare.call, "noop", [bare.upload(pool.one())])[1]
            n3 = timed(bare.call, "noop_same_io", [bare.upload(pool.one()), "resnet18", 3])[1]
            if i >= warmup:
                samples["upload"].append(up_ms)
                samples["classify"].append(ms)
                samples["noop"].append(n1)
                samples["noop_same_io"].append(n3)
                forward.append(_table(times))
    finally:
        real.close()
        bare.close()
    return {**{f"{k}_ms": median(v) for k, v in samples.items()}, "server_stages_ms": _stages(forward),
            "samples": samples}
