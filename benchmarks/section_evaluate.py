"""Evaluation section: the local engine's throughput next to the core's own batched loop, and
peak memory growth from 100 to 1,000 images (resnet18, random-init weights, CPU).

1. Throughput on the same images (96 distinct 320x240 JPEGs in 4 class folders, batches of 16):
   the core's own loop (read + ``dashboard.images.load_image`` + ``Classifier.classify_batch``,
   one batch after the other) vs ``service.evaluate(folder, ["resnet18"])`` (the local engine:
   decoding in worker threads ahead of the forward passes, plus matching and tallying), 3
   interleaved rounds; the target is the median of the per-round ratios, >= 0.9.
2. Memory: peak RSS (psutil, sampled every 5 ms) above the RSS before the run, evaluating the
   first 100 and then all 1,000 of 1,000 distinct 384x384 JPEGs (each 432 KB decoded: holding
   1,000 would add 420 MB). Target: growth(1,000) - growth(100) < 100 MB.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.report import Row, Target
from benchmarks.util import peak_rss_growth_mb

CLASSES = ("tench", "goldfish", "207", "n01443537")
BATCH = 16
ROUNDS = 3


def _images(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        cls = folder / CLASSES[i % len(CLASSES)]
        cls.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, 3)
        arr = np.clip(base + rng.integers(-40, 41, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(cls / f"{i:05d}.jpg", quality=90)
    return folder


def _core_batched(service, folder: Path) -> float:
    """images/s of the core's own batched loop over the same files, one batch after the other."""
    from dashboard.images import MAX_ASPECT_RATIO, load_image

    classifier = service.model("resnet18")[0]
    paths = sorted(folder.rglob("*.jpg"))
    start = time.perf_counter()
    for i in range(0, len(paths), BATCH):
        images = [load_image(p.read_bytes(), max_pixels=service.settings.max_pixels, filename=p.name,
                             max_aspect_ratio=MAX_ASPECT_RATIO).image for p in paths[i:i + BATCH]]
        classifier.classify_batch(images, 5)
    return len(paths) / (time.perf_counter() - start)


def _engine(service, folder: Path) -> float:
    start = time.perf_counter()
    report = service.evaluate(folder, ["resnet18"], batch_size=BATCH, gallery_size=0)
    return report.images / (time.perf_counter() - start)


def run(work: Path, log):
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    work.mkdir(parents=True, exist_ok=True)
    service = ClassificationService(resolve_settings(device="cpu", eval_batch_size=BATCH))
    service.model("resnet18")
    folder = _images(work / "throughput", 96, (320, 240))
    _engine(service, folder)  # warm-up of both paths
    _core_batched(service, folder)
    core, engine = [], []
    for r in range(ROUNDS):
        log(f"  evaluate throughput round {r + 1}/{ROUNDS}")
        core.append(_core_batched(service, folder))
        engine.append(_engine(service, folder))
    ratio = statistics.median(e / c for e, c in zip(engine, core))

    log("  evaluate memory: 1,000 images of 384x384")
    many = _images(work / "memory", 1000, (384, 384), seed=1)
    service.evaluate(many, ["resnet18"], limit=50, gallery_size=0)
    small = peak_rss_growth_mb(lambda: service.evaluate(many, ["resnet18"], limit=100, gallery_size=0))
    large = peak_rss_growth_mb(lambda: service.evaluate(many, ["resnet18"], gallery_size=0))

    rows = [
        Row("[eval] core batched loop, resnet18, 96 images, batch 16 (images/s)", total=statistics.median(core),
            notes=f"median of {ROUNDS}; read + load_image + classify_batch, one batch after the other"),
        Row("[eval] local engine service.evaluate, same images (images/s)", total=statistics.median(engine),
            notes=f"median of {ROUNDS}; decode in 2 threads ahead, top-1/top-5 tally"),
        Row("[eval] peak RSS growth, 100 images of 384x384 (MB)", total=small),
        Row("[eval] peak RSS growth, 1,000 images of 384x384 (MB)", total=large,
            notes="holding the decoded images would add ~420 MB"),
    ]
    targets = [
        Target("evaluate: local engine throughput vs the core's batched loop",
               f"{statistics.median(engine):.1f} vs {statistics.median(core):.1f} images/s", ratio, ">= 0.9",
               ratio >= 0.9),
        Target("evaluate: peak RSS growth 100 -> 1,000 images", f"{small:.1f} -> {large:.1f} MB",
               None, "< 100 MB more", large - small < 100),
    ]
    raw = {"core_images_per_s": core, "engine_images_per_s": engine, "rss_growth_mb": {"100": small, "1000": large}}
    return rows, targets, raw
