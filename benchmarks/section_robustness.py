"""Robustness: a batched sweep against separate classifications, and the perturbation preview.

1. A sweep of 8 strengths (Gaussian blur, assets/examples/cat.jpg) for the two default models
   (resnet18 and ViT-B/16, random-init full size) through ``service.sweep`` - each model classifies
   its 8 perturbed images in one forward pass - against the same 8 perturbed images made the same
   way and then classified one by one, 16 separate ``Classifier.classify`` calls (preprocess,
   forward, postprocess each). Rounds alternate which side goes first; the ratio is the median of
   the per-round ratios. Target: at most 0.7x.
2. The preview of a 640-pixel photo (assets/examples/rocket.jpg, 640x427):
   ``service.perturb_preview(path, name, 0.5)`` - read, checks, decode, perturbation - per
   perturbation, median of N. Target: every perturbation's median at most 50 ms. Gradio's PNG
   encoding of the preview for the page is not included.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.report import Row, Target
from benchmarks.util import PHOTO, ROOT, median, timed

KEYS = ("resnet18", "google/vit-base-patch16-224")
STEPS = 8
ROUNDS = 3
PREVIEW_RUNS = 15
PREVIEW_PHOTO = ROOT / "assets" / "examples" / "rocket.jpg"
SWEEP_LIMIT, PREVIEW_LIMIT_MS = 0.7, 50.0


def run(work: Path, log) -> tuple[list[Row], list[Target], dict]:
    from dashboard import perturb
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    service = ClassificationService(resolve_settings(device="cpu", result_cache_size=0))
    service.preload(KEYS)
    log(f"  [robustness] sweep of {STEPS} strengths x {len(KEYS)} models vs {STEPS * len(KEYS)} single calls")

    forward: dict[str, list[float]] = {"sweep": [], "separate": []}  # forward ms, both models, per run

    def sweep() -> None:
        result = service.sweep(PHOTO, KEYS, "gaussian_blur", steps=STEPS, seed=0)
        forward["sweep"].append(sum(m.forward_ms for m in result.models))

    def separate() -> None:
        _, image = service._working_image(PHOTO, None)
        images = [perturb.perturb(image, "gaussian_blur", s, 0).image for s in perturb.strengths(STEPS)]
        total = 0.0
        for key in KEYS:
            classifier = service.model(key)[0]
            for img in images:
                total += classifier.classify(img, top_k=1).times.forward_ms
        forward["separate"].append(total)

    sweep(), separate()  # warm both paths
    forward["sweep"].clear(), forward["separate"].clear()
    sweep_ms, separate_ms, ratios = [], [], []
    for r in range(ROUNDS):
        order = (sweep, separate) if r % 2 == 0 else (separate, sweep)
        times = {fn.__name__: timed(fn)[1] for fn in order}
        sweep_ms.append(times["sweep"])
        separate_ms.append(times["separate"])
        ratios.append(times["sweep"] / times["separate"])
        log(f"    round {r + 1}: sweep {times['sweep']:.0f} ms, separate {times['separate']:.0f} ms")
    ratio = statistics.median(ratios)

    log(f"  [robustness] preview of a 640-pixel photo, {PREVIEW_RUNS} runs per perturbation")
    preview: dict[str, list[float]] = {}
    for name in perturb.PERTURBATIONS:
        service.perturb_preview(PREVIEW_PHOTO, name, 0.5, 0)
        preview[name] = [timed(service.perturb_preview, PREVIEW_PHOTO, name, 0.5, 0)[1]
                         for _ in range(PREVIEW_RUNS)]
    medians = {name: median(v) for name, v in preview.items()}
    worst = max(medians, key=medians.get)

    rows = [
        Row(f"[robustness] sweep, {STEPS} blur strengths x resnet18 + ViT-B/16, one forward per model (ms)",
            total=median(sweep_ms), notes=f"median of {ROUNDS}; {len(KEYS)} forwards of {STEPS} images"),
        Row(f"[robustness] the same {STEPS} images, {STEPS * len(KEYS)} separate classifications (ms)",
            total=median(separate_ms), notes=f"median of {ROUNDS}; same perturbations, then one image per call"),
        Row("[robustness] forward passes alone, sweep vs separate (ms, both models)",
            forward=median(forward["sweep"]), total=median(forward["separate"]),
            notes="forward: the sweep's 2 batched forwards; total: the 16 single forwards"),
        *[Row(f"[robustness] preview, {name}, strength 0.5, 640x427 photo (ms)", total=m,
              notes=f"median of {PREVIEW_RUNS}; read + checks + decode + perturbation")
          for name, m in medians.items()],
    ]
    targets = [
        Target(f"sweep of {STEPS} strengths for the two default models vs {STEPS * len(KEYS)} separate "
               "classifications", f"{median(sweep_ms):.0f} ms vs {median(separate_ms):.0f} ms", ratio,
               f"<= {SWEEP_LIMIT}", ratio <= SWEEP_LIMIT),
        Target("preview of a 640-pixel photo: perturbations whose median is within 50 ms (informational)",
               f"{sum(m <= PREVIEW_LIMIT_MS for m in medians.values())} of {len(medians)}", None, "all", None),
        Target("preview of a 640-pixel photo, slowest perturbation's median",
               f"{medians[worst]:.1f} ms ({worst}; fastest {min(medians.values()):.1f} ms)",
               medians[worst] / PREVIEW_LIMIT_MS, f"<= {PREVIEW_LIMIT_MS:.0f} ms", medians[worst] <= PREVIEW_LIMIT_MS),
    ]
    raw = {"forward_ms": forward, "sweep_ms": sweep_ms, "separate_ms": separate_ms, "ratios": ratios, "preview_ms": preview,
           "steps": STEPS, "models": list(KEYS), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return rows, targets, raw
