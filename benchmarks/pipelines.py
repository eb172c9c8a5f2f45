"""Section 1 (in-process): our pipeline next to the reference pipelines, stage by stage.

Every pipeline sees the same photo and the same weights file. Runs are interleaved round-robin
(run i of every pipeline, then run i+1 ...) so that drift of the machine hits all of them alike.
Reference pipelines start from the decoded PIL image; decoding is measured on its own rows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.util import median, ms_since, run_together, timed

RESNET = "resnet18"
VIT = "google/vit-base-patch16-224"
TOP_K = 3


@dataclass
class Samples:
    """Per-run stage times (ms) of one pipeline; ``None`` where a stage is not separable."""

    name: str
    note: str = ""
    pre: list[float | None] = field(default_factory=list)
    fwd: list[float | None] = field(default_factory=list)
    post: list[float | None] = field(default_factory=list)
    total: list[float] = field(default_factory=list)

    def add(self, pre: float | None, fwd: float | None, post: float | None, total: float) -> None:
        self.pre.append(pre)
        self.fwd.append(fwd)
        self.post.append(post)
        self.total.append(total)

    def summary(self) -> dict:
        """Medians per stage; ``other`` is the median of each run's total minus its stages."""
        stages = {k: median(getattr(self, k)) for k in ("pre", "fwd", "post")}
        others = [t - (a + b + c) for a, b, c, t in zip(self.pre, self.fwd, self.post, self.total)
                  if None not in (a, b, c)]
        quartiles = statistics.quantiles(self.total, n=4) if len(self.total) > 1 else [self.total[0]] * 3
        return {"name": self.name, "note": self.note, "runs": len(self.total), **stages,
                "other": median(others) if others else None, "total": median(self.total),
                "p25": quartiles[0], "p75": quartiles[2], "totals": list(self.total),
                "fwd_samples": list(self.fwd)}


Step = Callable[[], tuple[float | None, float | None, float | None, float]]


def _round_robin(steps: dict[str, tuple[Samples, Step]], runs: int, warmup: int) -> None:
    names = list(steps)
    for i in range(warmup + runs):
        order = names[i % len(names):] + names[:i % len(names)]  # rotate who goes first
        for name in order:
            samples, step = steps[name]
            result = step()
            if i >= warmup:
                samples.add(*result)


# --- the pipelines -------------------------------------------------------------------------------
def _ours_classifier(classifier, image) -> Step:
    def step():
        prediction, wall = timed(classifier.classify, image, TOP_K)
        t = prediction.times
        return t.preprocess_ms, t.forward_ms, t.postprocess_ms, wall
    return step


def _ours_service(service, path: Path, key: str) -> Step:
    def step():
        result, wall = timed(service.classify, str(path), key, TOP_K)
        assert not result.repeated, "result cache answered although result_cache_size=0"
        t = result.prediction.times
        return t.preprocess_ms, t.forward_ms, t.postprocess_ms, wall
    return step


def _ours_handler(service, path: Path, key: str) -> Step:
    """What the Gradio callback runs: service + the latency DataFrame + the model card."""
    import tempfile

    from dashboard.handlers import Handlers

    handlers = Handlers(service, Path(tempfile.gettempdir()))

    def step():
        (_, table, card), wall = timed(handlers.classify, str(path), key, TOP_K, lambda *a, **k: None)
        assert "result cache" not in card
        row = table.iloc[0]
        return row["preprocess ms"], row["forward ms"], row["postprocess ms"], wall
    return step


def _torchvision_reference(model, transform, categories, image) -> Step:
    """What torchvision's docs show: weights.transforms(), the model, softmax, top-k, names."""
    import torch

    def step():
        t0 = time.perf_counter()
        batch = transform(image).unsqueeze(0)
        t1 = time.perf_counter()
        with torch.inference_mode():
            logits = model(batch)
        t2 = time.perf_counter()
        with torch.inference_mode():
            probs = logits.softmax(-1)[0]
            top_p, top_i = probs.topk(TOP_K)
            [(categories[int(i)], float(p)) for p, i in zip(top_p, top_i)]
        t3 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3
    return step


def _hf_reference(model, processor, image) -> Step:
    """The transformers model card recipe: AutoImageProcessor, the model, softmax, top-k, id2label."""
    import torch

    id2label = model.config.id2label

    def step():
        t0 = time.perf_counter()
        inputs = processor(images=image, return_tensors="pt")
        t1 = time.perf_counter()
        with torch.inference_mode():
            logits = model(**inputs).logits
        t2 = time.perf_counter()
        with torch.inference_mode():
            top_p, top_i = logits.softmax(-1)[0].topk(TOP_K)
            [(id2label[int(i)], float(p)) for p, i in zip(top_p, top_i)]
        t3 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3
    return step


def _pipeline_stages(pipe, image) -> Step:
    """transformers' pipeline, its three stages called one by one (as Pipeline.run_single does)."""
    def step():
        t0 = time.perf_counter()
        inputs = pipe.preprocess(image)
        t1 = time.perf_counter()
        outputs = pipe.forward(inputs)
        t2 = time.perf_counter()
        pipe.postprocess(outputs, top_k=TOP_K)
        t3 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3
    return step


def _pipeline_call(pipe, image) -> Step:
    def step():
        _, wall = timed(pipe, image, top_k=TOP_K)
        return None, None, None, wall
    return step


def _seed_tutorial(model, labels, image, *, resize: int | None = None, logits_of=lambda o: o) -> Step:
    """The seed tutorial's predict: ToTensor() (no resize, no normalisation), the model, softmax,
    and a dict of every class. ``resize`` is only for the ViT, which cannot take another size."""
    import torch
    from torchvision import transforms

    to_tensor = transforms.ToTensor()
    source = image.resize((resize, resize)) if resize else image

    def step():
        t0 = time.perf_counter()
        inp = to_tensor(source).unsqueeze(0)
        t1 = time.perf_counter()
        with torch.no_grad():
            out = logits_of(model(inp))
        t2 = time.perf_counter()
        with torch.no_grad():
            prediction = torch.nn.functional.softmax(out[0], dim=0)
            {labels[i]: float(prediction[i]) for i in range(1000)}
        t3 = time.perf_counter()
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3
    return step


def _decode_pil(path: Path) -> Step:
    from PIL import Image

    def step():
        start = time.perf_counter()
        with Image.open(path) as im:
            im.convert("RGB")
        return None, None, None, ms_since(start)
    return step


def _decode_ours(path: Path, max_pixels: int) -> Step:
    from dashboard.images import load_image

    def step():
        _, wall = timed(load_image, str(path), max_pixels=max_pixels)
        return None, None, None, wall
    return step


# --- the section -----------------------------------------------------------------------------------
def run(photo: Path, device: str, runs: dict[str, int], warmup: dict[str, int], log=print) -> dict:
    """Per-model stage medians, first-use load times, and the result-cache repeat."""
    import torch
    import torchvision.models as tvm
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline

    from dashboard.models.registry import get_spec
    from dashboard.models.torchvision_backend import weights_for
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    service = ClassificationService(resolve_settings(device=device, result_cache_size=0))
    with Image.open(photo) as im:
        image = im.convert("RGB")
    out: dict = {"photo": {"path": str(photo), "size": list(image.size)}, "models": {}, "load": {}}

    # First use of each model through our service (includes its warm-up forward pass).
    for key in (RESNET, VIT):
        first, wall = timed(service.classify, str(photo), key, TOP_K)
        out["load"][key] = {"load_ms": first.load.load_ms, "cache_load_ms": service.cache.load_ms.get(key),
                            "first_call_ms": wall, "cached": first.load.cached}
        log(f"  first use of {key}: load {first.load.load_ms:.0f} ms, first call {wall:.0f} ms")
    out["torch_threads"] = torch.get_num_threads()
    out["device"] = service.device
    out["weight_bytes"] = {key: service.model(key)[0].info.weight_bytes for key in (RESNET, VIT)}

    # --- resnet18
    weights = weights_for(get_spec(RESNET))
    tv_model = tvm.get_model(RESNET, weights=weights).eval()  # the same file in $TORCH_HOME
    categories = weights.meta["categories"]
    classifier = service.model(RESNET)[0]
    rows = {
        "ours_classifier": Samples("ours: Classifier stages (decoded PIL image)"),
        "ours_service": Samples("ours: service.classify(file path), result cache off",
                                "other = read + sha256 + checks + decode + batcher hand-off"),
        "ours_handler": Samples("ours: Handlers.classify(file path), the Gradio callback's body",
                                "other = the service's other + latency DataFrame + model card"),
        "torchvision_reference": Samples("torchvision reference: weights.transforms() + model + "
                                         "softmax/top-k"),
        "seed_tutorial": Samples(f"seed tutorial: ToTensor() on the full {image.size[0]}x{image.size[1]} "
                                 "image, softmax, dict of 1000"),
        "decode_pil": Samples("decode only: PIL open + convert('RGB')"),
        "decode_ours": Samples("decode only: dashboard.images.load_image (read, sha256, checks, decode)"),
    }
    steps = {
        "ours_classifier": _ours_classifier(classifier, image),
        "ours_service": _ours_service(service, photo, RESNET),
        "ours_handler": _ours_handler(service, photo, RESNET),
        "torchvision_reference": _torchvision_reference(tv_model, weights.transforms(), categories, image),
        "seed_tutorial": _seed_tutorial(tv_model, categories, image),
        "decode_pil": _decode_pil(photo),
        "decode_ours": _decode_ours(photo, service.settings.max_pixels),
    }
    log(f"  {RESNET}: {runs['cnn']} runs x {len(steps)} pipelines")
    _round_robin({k: (rows[k], steps[k]) for k in steps}, runs["cnn"], warmup["cnn"])
    out["models"][RESNET] = {k: v.summary() for k, v in rows.items()}
    out["models"][RESNET]["transformers_pipeline"] = {
        "name": "transformers pipeline", "note": "n/a: torchvision weights are not a transformers model"}
    del tv_model

    # --- ViT-B/16
    classifier = service.model(VIT)[0]
    processor = AutoImageProcessor.from_pretrained(VIT)
    hf_model = AutoModelForImageClassification.from_pretrained(VIT).eval()
    pipe = pipeline("image-classification", model=VIT, device=device)
    labels = [hf_model.config.id2label[i] for i in range(len(hf_model.config.id2label))]
    full_size_error = _try_full_size_vit(hf_model, image)
    rows = {
        "ours_classifier": Samples("ours: Classifier stages (decoded PIL image)"),
        "ours_service": Samples("ours: service.classify(file path), result cache off",
                                "other = read + sha256 + checks + decode + batcher hand-off"),
        "hf_reference": Samples("transformers reference: AutoImageProcessor + model + softmax/top-k",
                                "the ViT's counterpart of the torchvision reference"),
        "transformers_pipeline": Samples('transformers pipeline("image-classification"), stages called one '
                                         "by one", f"processor {type(pipe.image_processor).__name__}"),
        "transformers_pipeline_call": Samples('transformers pipeline("image-classification"), whole call '
                                              "pipe(img)"),
        "seed_tutorial": Samples("seed tutorial, resized to 224x224 first (ToTensor, no normalisation)",
                                 f"on the full-size image it cannot run: {full_size_error}"),
    }
    steps = {
        "ours_classifier": _ours_classifier(classifier, image),
        "ours_service": _ours_service(service, photo, VIT),
        "hf_reference": _hf_reference(hf_model, processor, image),
        "transformers_pipeline": _pipeline_stages(pipe, image),
        "transformers_pipeline_call": _pipeline_call(pipe, image),
        "seed_tutorial": _seed_tutorial(hf_model, labels, image, resize=224, logits_of=lambda o: o.logits),
    }
    log(f"  {VIT}: {runs['vit']} runs x {len(steps)} pipelines")
    _round_robin({k: (rows[k], steps[k]) for k in steps}, runs["vit"], warmup["vit"])
    out["models"][VIT] = {k: v.summary() for k, v in rows.items()}
    out["models"][VIT]["torchvision_reference"] = {
        "name": "torchvision reference",
        "note": "n/a: the Hub ViT's weights are not a torchvision weights entry"}
    del hf_model, pipe

    out["repeat"] = _repeat(photo, device, runs["repeat"])
    return out


def _try_full_size_vit(model, image) -> str:
    import torch
    from torchvision import transforms

    try:
        with torch.no_grad():
            model(transforms.ToTensor()(image).unsqueeze(0))
    except Exception as exc:  # noqa: BLE001 - reported, not handled
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return "it ran"


def _repeat(photo: Path, device: str, runs: int) -> dict:
    """An identical repeat (same bytes, model, top-k) with the result cache on, in the core."""
    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    service = ClassificationService(resolve_settings(device=device))
    out = {"result_cache_size": service.settings.result_cache_size}
    for key in (RESNET, VIT):
        _, miss_ms = timed(service.classify, str(photo), key, TOP_K)
        times, repeated = [], []
        for _ in range(runs):
            hit, ms = timed(service.classify, str(photo), key, TOP_K)
            times.append(ms)
            repeated.append(hit.repeated)
        out[key] = {"first_ms": miss_ms, "repeat_ms": median(times), "all_repeated": all(repeated),
                    "samples": times}
    return out


def core_throughput(photos: list[Path], device: str, clients: int, per_client: int, sequential: int,
                    rounds: int) -> dict:
    """service.classify in threads, no HTTP: shows what the core's batching gives by itself."""
    import threading

    from dashboard.service import ClassificationService
    from dashboard.settings import resolve_settings

    service = ClassificationService(resolve_settings(device=device, result_cache_size=0))
    images = iter(photos)
    service.classify(str(next(images)), RESNET, TOP_K)  # load
    seq, conc, batch_sizes = [], [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(sequential):
            service.classify(str(next(images)), RESNET, TOP_K)
        seq.append(sequential / (time.perf_counter() - start))

        work = [[str(next(images)) for _ in range(per_client)] for _ in range(clients)]
        barrier = threading.Barrier(clients + 1)

        def client(paths, barrier=barrier):
            barrier.wait()
            for path in paths:
                result = service.classify(path, RESNET, TOP_K)
                batch_sizes.append(getattr(result.prediction, "batch_size", 1))

        conc.append(clients * per_client / run_together(client, [(w,) for w in work], barrier))
    return {"sequential_rps": median(seq), "concurrent_rps": median(conc), "clients": clients,
            "mean_batch_size": sum(batch_sizes) / len(batch_sizes),
            "samples": {"sequential": seq, "concurrent": conc}}
