"""Section "startup": the page is served within 1.3x `python -c "import gradio"` while the two
default models load in the background after it (DASHBOARD_BACKGROUND_PRELOAD), and how long
until both are warm.

Each round, interleaved: `import gradio`; `python -m dashboard` with the background preload (the
default) to the first HTTP 200 on /, then until its log says both defaults are loaded; the same
server with the preload turned off, to the first 200. ``python benchmarks/run.py --only startup``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from benchmarks import server as srv
from benchmarks.report import Row, Target
from benchmarks.util import median

ROUNDS = 3
LOADED = re.compile(r"dashboard\.models\.cache: loaded (\S+) in (\d+) ms")
DONE = "background preload: google/vit-base-patch16-224"


def _server(env: dict, work: Path, name: str, preload: bool) -> srv.Server:
    env = {**env, "DASHBOARD_BACKGROUND_PRELOAD": "true" if preload else "false", "PYTHONUNBUFFERED": "1"}
    return srv.Server(f"python -m dashboard ({name})", [sys.executable, "-m", "dashboard"], env, work / f"{name}.log")


def _wait_warm(server: srv.Server, t0: float, timeout_s: float = 300) -> tuple[float | None, dict]:
    """Seconds from the server's start until its log says the last default finished loading."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = server.log_path.read_text(errors="replace")
        if DONE in text:
            return time.perf_counter() - t0, {k: float(ms) for k, ms in LOADED.findall(text)}
        if server.proc is not None and server.proc.poll() is not None:
            break
        time.sleep(0.05)
    return None, {}


def run(work: Path, log) -> tuple[list, list, dict]:
    work.mkdir(parents=True, exist_ok=True)
    import os

    env = srv.server_env(dict(os.environ), work / "gradio")
    srv.import_gradio_s(env)  # untimed: page cache
    raw: dict = {"import_gradio_s": [], "first_200_preload_s": [], "first_200_no_preload_s": [],
                 "warm_s": [], "load_ms": []}
    for i in range(ROUNDS):
        raw["import_gradio_s"].append(srv.import_gradio_s(env))
        on = _server(env, work, f"preload-{i}", True)
        t0 = time.perf_counter()
        try:
            raw["first_200_preload_s"].append(on.start())
            warm, loads = _wait_warm(on, t0)
        finally:
            on.stop()
        raw["warm_s"].append(warm)
        raw["load_ms"].append(loads)
        off = _server(env, work, f"no-preload-{i}", False)
        try:
            raw["first_200_no_preload_s"].append(off.start())
        finally:
            off.stop()
        log(f"  round {i + 1}/{ROUNDS}: import gradio {raw['import_gradio_s'][-1]:.2f} s, first 200 "
            f"{raw['first_200_preload_s'][-1]:.2f} s (preload on) / {raw['first_200_no_preload_s'][-1]:.2f} s "
            f"(off), both defaults loaded {warm if warm is None else round(warm, 1)} s after start")
    imp, on_s, off_s = (median(raw[k]) for k in ("import_gradio_s", "first_200_preload_s", "first_200_no_preload_s"))
    warm = median(raw["warm_s"])
    loads = {key: median([d.get(key) for d in raw["load_ms"]]) for key in ("resnet18", "google/vit-base-patch16-224")}
    rows = [
        Row("[startup] `python -c \"import gradio\"` (s)", total=imp, digits=2, notes=f"median of {ROUNDS}"),
        Row("[startup] `python -m dashboard` to first HTTP 200 on /, background preload on (s)", total=on_s,
            digits=2, notes=f"median of {ROUNDS}; the default setting"),
        Row("[startup] the same with DASHBOARD_BACKGROUND_PRELOAD=false (s)", total=off_s, digits=2,
            notes=f"median of {ROUNDS}"),
        Row("[startup] start to both defaults loaded in the background (s)", total=warm, digits=1,
            notes="resnet18 then ViT-B/16; from the server's log"),
        Row("[startup] background load of resnet18, incl. importing torch/torchvision (ms)",
            total=loads["resnet18"], digits=0, notes="the time the loading message quotes"),
        Row("[startup] background load of ViT-B/16, incl. importing transformers (ms)",
            total=loads["google/vit-base-patch16-224"], digits=0, notes="random-init full-size weights"),
    ]
    ratio = on_s / imp if on_s and imp else None
    targets = [Target("page served within 1.3x `import gradio`, background preload on",
                      f"{on_s:.2f} vs {imp:.2f} s", ratio, "<= 1.30", None if ratio is None else ratio <= 1.3)]
    return rows, targets, raw
