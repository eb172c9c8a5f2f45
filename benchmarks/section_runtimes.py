"""Runtimes section (issue 12): forward pass per runtime for resnet18 and ViT-B/16, side by side.

``python benchmarks/run.py --only runtimes``. For each model, PyTorch, ONNX Runtime fp32 and
ONNX Runtime int8 (dynamic) run the same preprocessed photo, interleaved round-robin with a
large fp32 matmul that measures the machine's peak in the same run. Each runtime is reported
against the physical limit: the model's FLOPs (torch.utils.flop_counter, batch 1) divided by
that peak. The .onnx files are exported into a fresh folder, so the first-use cost (load,
export, parity gate, int8 quantisation and its agreement check) is measured too; this is the
only place the full-size ViT-B/16 is exported (the tests export tiny configs). Random weights:
speed, never accuracy.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path

from benchmarks.report import Row, Target
from benchmarks.util import PHOTO

MODELS = {"resnet18": "resnet18", "google/vit-base-patch16-224": "vit-base-patch16-224"}
RUNTIMES = ("pytorch", "onnxruntime", "onnxruntime-int8")
RUNS = {"resnet18": 20, "google/vit-base-patch16-224": 12}
WARMUP = 3
MATMUL_N = 2048
GOALS = {("resnet18", "onnxruntime"): 0.75, ("google/vit-base-patch16-224", "onnxruntime-int8"): 0.8}


def _flops(classifier, batch) -> int:
    """FLOPs of one forward (batch 1) as torch.utils.flop_counter counts them (2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        classifier.forward(batch)
    return int(counter.get_total_flops())


def _matmul_gflops() -> float:
    """One timed fp32 matmul of MATMUL_N x MATMUL_N (GFLOP/s), on torch's threads."""
    import torch

    a = torch.randn(MATMUL_N, MATMUL_N)
    b = torch.randn(MATMUL_N, MATMUL_N)
    start = time.perf_counter()
    torch.mm(a, b)
    return 2 * MATMUL_N**3 / (time.perf_counter() - start) / 1e9


def _timed_forward(classifier, batch) -> float:
    start = time.perf_counter()
    classifier.forward(batch)
    return (time.perf_counter() - start) * 1e3


def _one_thread_each(classifiers: dict, batch, runs: int, log, short: str) -> dict[str, list[float]]:
    """The same forwards with torch and ONNX Runtime both on one intra-op thread, interleaved.

    On a shared machine whose cores are oversubscribed, torch's OpenMP threads wait for each
    other at every operator's barrier and its 2-thread forward can slow down many times over,
    while ONNX Runtime (no spin-waiting) degrades gracefully; one thread each takes that
    difference out of the comparison. Informational rows, next to the default configuration."""
    import numpy as np
    import torch

    from dashboard.models.onnx_backend import open_session

    log(f"  {short}: {runs} interleaved rounds at 1 thread each")
    cores = len(os.sched_getaffinity(0))
    sessions = {r: open_session(c.onnx_path, "cpu", workers=cores) for r, c in classifiers.items() if r != "pytorch"}
    array = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    samples: dict[str, list[float]] = {r: [] for r in RUNTIMES}
    try:
        for i in range(WARMUP + runs):
            for runtime in RUNTIMES:
                start = time.perf_counter()
                if runtime == "pytorch":
                    classifiers[runtime].forward(batch)
                else:
                    sessions[runtime].run(None, {"pixel_values": array})
                if i >= WARMUP:
                    samples[runtime].append((time.perf_counter() - start) * 1e3)
    finally:
        torch.set_num_threads(threads)
    return samples


def run(work: Path, log) -> tuple[list[Row], list[Target], dict]:
    from PIL import Image

    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    work.mkdir(parents=True, exist_ok=True)
    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=0,
                                                     onnx_cache_dir=str(work / "onnx")))
    image = Image.open(PHOTO).convert("RGB")
    raw: dict = {"models": {}, "peak_gflops": []}
    try:
        for _ in range(3):
            _matmul_gflops()  # warm-up
        for key, short in MODELS.items():
            log(f"  {short}: loading on every runtime (first use exports to ONNX, gates, quantises)")
            classifiers, loads = {}, {}
            for runtime in RUNTIMES:
                classifier, info = service.model(key, runtime)
                classifiers[runtime], loads[runtime] = classifier, info.load_ms
            batch, _ = classifiers["pytorch"].timed_preprocess([image])
            flops = _flops(classifiers["pytorch"], batch)
            samples = {runtime: [] for runtime in RUNTIMES}
            stages = {runtime: [] for runtime in RUNTIMES}
            peaks = []
            order = list(RUNTIMES)
            log(f"  {short}: {RUNS[key]} interleaved rounds")
            for i in range(WARMUP + RUNS[key]):
                order = order[1:] + order[:1]  # rotate who goes first
                for runtime in order:
                    forward_ms = _timed_forward(classifiers[runtime], batch)
                    if i >= WARMUP:
                        samples[runtime].append(forward_ms)
                        stages[runtime].append(classifiers[runtime].classify(image, 3).times)
                if i >= WARMUP:
                    peaks.append(_matmul_gflops())
            raw["peak_gflops"] += peaks
            single = _one_thread_each(classifiers, batch, RUNS[key], log, short)
            raw["models"][key] = {
                "flops": flops, "forward_ms": samples, "load_ms": loads,
                "notes": {r: classifiers[r].info.runtime_note for r in RUNTIMES},
                "file_bytes": {r: classifiers[r].info.file_bytes for r in RUNTIMES},
                "one_thread_forward_ms": single,
                "stages": {r: [[t.preprocess_ms, t.forward_ms, t.postprocess_ms] for t in stages[r]]
                           for r in RUNTIMES},
            }
            classifiers.clear()
            service.cache.clear()  # one model at a time: ViT-B's three runtimes hold ~800 MB
    finally:
        shutil.rmtree(work / "onnx", ignore_errors=True)
    return _rows(raw), _targets(raw), raw


def _rows(raw: dict) -> list[Row]:
    peak = max(raw["peak_gflops"])
    rows = [Row("[12] machine fp32 peak: torch.mm 2048x2048, best of the run (GFLOP/s)", total=peak,
                notes=f"median {statistics.median(raw['peak_gflops']):.0f}; timed between the forward "
                      "rounds below", digits=0)]
    for key, data in raw["models"].items():
        limit_ms = data["flops"] / (peak * 1e9) * 1e3
        rows.append(Row(f"[12] {MODELS[key]} · physical limit: FLOPs / peak (ms)", forward=limit_ms,
                        notes=f"{data['flops'] / 1e9:.2f} GFLOPs (torch.utils.flop_counter, batch 1)"))
        base = statistics.median(data["forward_ms"]["pytorch"])
        for runtime in RUNTIMES:
            fwd = statistics.median(data["forward_ms"][runtime])
            pre, _, post = (statistics.median(s[i] for s in data["stages"][runtime]) for i in range(3))
            size = data["file_bytes"][runtime]
            notes = [f"{fwd / base:.2f}x PyTorch's forward", f"{fwd / limit_ms:.1f}x the limit",
                     f"first use {data['load_ms'][runtime] / 1e3:.1f} s"]
            if size:
                notes.append(f"file {size / 2**20:.1f} MB")
            if data["notes"][runtime]:
                notes.append(data["notes"][runtime])
            rows.append(Row(f"[12] {MODELS[key]} · {runtime} (ms)", pre, fwd, post, None, pre + fwd + post,
                            notes="; ".join(notes) + f"; forward median of {len(data['forward_ms'][runtime])}"))
        single = data["one_thread_forward_ms"]
        base1 = statistics.median(single["pytorch"])
        for runtime in RUNTIMES:
            fwd1 = statistics.median(single[runtime])
            rows.append(Row(f"[12] {MODELS[key]} · {runtime}, torch and ORT at 1 thread each (ms)", forward=fwd1,
                            notes=f"{fwd1 / base1:.2f}x PyTorch's 1-thread forward; "
                                  f"{fwd1 / (limit_ms * len(os.sched_getaffinity(0))):.1f}x the 1-core limit; "
                                  f"median of {len(single[runtime])}"))
    return rows


def _ratio(data: dict, runtime: str) -> float:
    """Median of per-round ratios (both measured in the same round)."""
    return statistics.median(a / b for a, b in zip(data["forward_ms"][runtime], data["forward_ms"]["pytorch"]))


def _targets(raw: dict) -> list[Target]:
    targets = []
    for (key, runtime), goal in GOALS.items():
        data = raw["models"][key]
        ratio = _ratio(data, runtime)
        fwd = statistics.median(data["forward_ms"][runtime])
        base = statistics.median(data["forward_ms"]["pytorch"])
        targets.append(Target(f"{MODELS[key]} forward on {runtime} <= {goal}x PyTorch fp32",
                              f"{fwd:.1f} vs {base:.1f} ms", ratio, f"<= {goal}", ratio <= goal))
    for (key, runtime), goal in GOALS.items():  # the same goals with one thread each (informational)
        single = raw["models"][key]["one_thread_forward_ms"]
        ratio = statistics.median(a / b for a, b in zip(single[runtime], single["pytorch"]))
        targets.append(Target(f"(info) {MODELS[key]} forward on {runtime}, both at 1 thread",
                              f"{statistics.median(single[runtime]):.1f} vs "
                              f"{statistics.median(single['pytorch']):.1f} ms", ratio, f"<= {goal}", None))
    peak = max(raw["peak_gflops"])
    for key, data in raw["models"].items():
        limit_ms = data["flops"] / (peak * 1e9) * 1e3
        for runtime in RUNTIMES:
            fwd = statistics.median(data["forward_ms"][runtime])
            targets.append(Target(f"{MODELS[key]} {runtime} forward vs the physical limit (FLOPs / peak)",
                                  f"{fwd:.1f} vs {limit_ms:.1f} ms", fwd / limit_ms, "informational", None))
    return targets
