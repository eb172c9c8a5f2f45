"""Run by tests/test_evaluate_ray.py in its own process: both engines on one folder, as JSON
(the known colour models; a registry model on PyTorch and ONNX Runtime by key).

Ray is kept out of the pytest process: its threads and its C++ terminate handler, left in a
process that also holds torch tensors in other threads, can abort that process's interpreter
teardown after every test has passed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import evalkit
from dashboard.service import ClassificationService
from dashboard.settings import resolve_settings


def summary(report) -> dict:
    return {
        "engine": report.engine, "images": report.images,
        "models": [[m.key, m.top1, m.top5, m.per_class, m.confusions, m.top1_ci, m.unmatched_classes]
                   for m in report.models],
        "predictions": report.predictions, "skipped": report.skipped,
        "disagreements": [[d.differ, d.images] for d in report.disagreements],
        "gallery": [g.name for g in report.gallery],
    }


def main(folder: Path) -> None:
    import ray

    service = ClassificationService(resolve_settings(device="cpu", eval_batch_size=8))
    models = [evalkit.colour_classifier(), evalkit.colour_classifier("swapped", ("green", "red", "blue", "yellow"))]
    local = service.evaluate(folder, models)
    seen = []
    distributed = service.evaluate(folder, models, engine="ray", progress=seen.append)
    # registry keys on ONNX Runtime: each actor loads KEY@RUNTIME itself (the driver's export reused)
    keys = ["squeezenet1_1", "squeezenet1_1@onnxruntime"]
    onnx_local = service.evaluate(folder, keys, limit=8)
    onnx_ray = service.evaluate(folder, keys, limit=8, engine="ray")
    out = {"local": summary(local), "ray": summary(distributed), "last_done": seen[-1].done,
           "onnx_local": summary(onnx_local), "onnx_ray": summary(onnx_ray),
           "onnx_runtimes": [m.runtime for m in onnx_ray.models], "ray_still_up": ray.is_initialized()}
    print(json.dumps(out, default=list))
    sys.stdout.flush()
    os._exit(0)  # see the module docstring: skip a teardown that Ray can abort


if __name__ == "__main__":
    main(Path(sys.argv[1]))
