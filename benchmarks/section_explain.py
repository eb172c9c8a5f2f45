"""Heatmaps: explanation time per method as a ratio of the same model's forward pass, measured
side by side in the same run (resnet18 and ViT-B/16, random-init full-size weights, cat.jpg).

- per round, interleaved: the classifier's forward (inference_mode fast path, on the model that
  serves classification) and each method on the explainer's copy (``Explanation.ms``: forward,
  backward where the method needs one, and the heatmap on the model input); the ratio is the
  median of the per-round ratios. Targets: Grad-CAM <= 3x, attention rollout <= 1.5x.
- classification untouched: resnet18's forward on a service that never explained vs one whose
  model has been explained many times, interleaved (target <= 1.10x, noise allowance).
- Compare with overlays for the two defaults: ``explain_models`` (both overlays, from the file)
  next to ``compare_models`` (both classifications) in the same rounds (informational).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

ROUNDS = {"resnet18": 7, "google/vit-base-patch16-224": 5}
METHODS = {"resnet18": ("gradcam", "gradcam++", "eigencam"),
           "google/vit-base-patch16-224": ("rollout", "gradcam")}
LIMITS = {"gradcam": 3.0, "rollout": 1.5}
SHORT = {"resnet18": "resnet18", "google/vit-base-patch16-224": "vit-base-patch16-224"}
UNTOUCHED_LIMIT = 1.10


def _forward_ms(classifier, batch) -> float:
    start = time.perf_counter()
    classifier.forward(batch)
    classifier._sync()
    return (time.perf_counter() - start) * 1e3


def run(work: Path, log):
    from PIL import Image

    from benchmarks.report import Row, Target
    from benchmarks.util import PHOTO
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    settings = resolve_settings(device="cpu", result_cache_size=0)
    service = ClassificationService(settings)
    image = Image.open(PHOTO).convert("RGB")
    rows, targets, raw = [], [], {"rounds": ROUNDS}

    for key, methods in METHODS.items():
        log(f"  explain: {key}")
        classifier, _ = service.model(key)
        explainer = service.explainer(key)
        batch = classifier.preprocess([image])
        for _ in range(2):  # warm-up: first calls allocate and import
            _forward_ms(classifier, batch)
            for method in methods:
                explainer.explain(image, method=method)
        samples = {"forward": [], **{m: [] for m in methods}, **{f"{m} total": [] for m in methods}}
        for _ in range(ROUNDS[key]):
            samples["forward"].append(_forward_ms(classifier, batch))
            for method in methods:
                result = explainer.explain(image, method=method)
                samples[method].append(result.ms)
                samples[f"{method} total"].append(result.total_ms)
        raw[key] = samples
        forward = statistics.median(samples["forward"])
        for method in methods:
            ratios = [m / f for m, f in zip(samples[method], samples["forward"])]
            ratio = statistics.median(ratios)
            ms = statistics.median(samples[method])
            total = statistics.median(samples[f"{method} total"])
            name = f"{SHORT[key]} · explain {method} (ms)"
            rows.append(Row(name, forward=forward, other=total - ms, total=ms,
                            notes=f"forward = the classifier's forward in the same rounds; total = the "
                                  f"method alone ({ratio:.2f}x forward); other = preprocessing, mapping "
                                  f"back and overlay; median of {ROUNDS[key]}"))
            limit = LIMITS.get(method)
            targets.append(Target(
                f"{SHORT[key]}: {method} <= {limit:g}x forward" if limit else f"(info) {SHORT[key]}: {method} vs forward",
                f"{ms:.1f} ms vs {forward:.1f} ms (median of per-round ratios)", ratio,
                f"<= {limit:g}" if limit else "none", ratio <= limit if limit else None))

    log("  explain: classification untouched by explanations")
    fresh = ClassificationService(settings)
    untouched, _ = fresh.model("resnet18")
    explained, _ = service.model("resnet18")
    batch = untouched.preprocess([image])
    pairs = []
    for _ in range(3):
        _forward_ms(untouched, batch), _forward_ms(explained, batch)
    for _ in range(11):
        pairs.append((_forward_ms(untouched, batch), _forward_ms(explained, batch)))
    raw["untouched"] = pairs
    ratio = statistics.median(b / a for a, b in pairs)
    a, b = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    rows.append(Row("resnet18 · forward after explanations vs never explained (ms)", forward=b, total=a,
                    notes=f"forward: the model explained {sum(ROUNDS.values()) + 4}+ times; total: a "
                          f"service that never explained; ratio {ratio:.2f}; median of 11 interleaved"))
    targets.append(Target("resnet18: classification forward not slower after explanations",
                          f"{b:.1f} ms vs {a:.1f} ms", ratio, f"<= {UNTOUCHED_LIMIT}", ratio <= UNTOUCHED_LIMIT))

    log("  explain: Compare with overlays for the two defaults")
    keys = list(METHODS)
    service.explain_models(PHOTO, keys)
    compare, overlays = [], []
    for _ in range(3):
        start = time.perf_counter()
        service.compare_models(PHOTO, keys, 3)
        compare.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        service.explain_models(PHOTO, keys)
        overlays.append((time.perf_counter() - start) * 1e3)
    raw["compare"] = {"compare_ms": compare, "overlays_ms": overlays}
    c, o = statistics.median(compare), statistics.median(overlays)
    rows.append(Row("Compare resnet18 + ViT-B/16: the two overlays (ms)", other=c, total=o,
                    notes="total: explain_models (default methods: Grad-CAM, rollout) from the file; "
                          f"other: compare_models (classification) in the same rounds; median of 3"))
    targets.append(Target("(info) Compare with overlays for the two defaults vs Compare alone",
                          f"{o:.0f} ms vs {c:.0f} ms", o / c, "none", None))
    return rows, targets, raw
