"""The Ray Data engine: the same evaluation spread over a Ray cluster (or a local Ray instance).

Following Ray's batch-inference example: a dataset of file references (``from_items``), a
``map`` that reads and decodes each image through dashboard.images, then ``map_batches`` with a
callable class that loads the models once per actor (``concurrency`` actors, one GPU each when
the cluster has GPUs). Results stream back to the driver in dataset order and are tallied by
the same code as the local engine, so both engines give the same numbers on the same folder.

Workers read the images by path: on a cluster, the folder must be on storage every node sees
(NFS, a mounted bucket), and the models must be loadable there (the same TORCH_HOME / HF_HOME).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.errors import DatasetError, ImageInputError
from dashboard.evaluate.datasets import Dataset
from dashboard.evaluate.engine import Progress, ProgressFn, model_sides, run_batch
from dashboard.evaluate.metrics import TOP_K, EvaluationReport, Tally
from dashboard.images import MAX_ASPECT_RATIO, load_image

if TYPE_CHECKING:
    from dashboard.models.classifier import Classifier

LOCAL_CPUS = 2  # a local instance stays small: the machine is shared with the app and the driver
_EMPTY = np.zeros((1, 1, 3), np.uint8)


def decode(row: dict[str, Any], max_pixels: int) -> dict[str, Any]:
    """Ray Data ``map``: read one file and decode it with dashboard.images (errors kept as text)."""
    try:
        data = Path(row["ref"]).read_bytes()
        image = load_image(data, max_pixels=max_pixels, filename=row["name"], max_aspect_ratio=MAX_ASPECT_RATIO).image
        return {**row, "image": np.asarray(image), "error": ""}
    except OSError:
        return {**row, "image": _EMPTY, "error": "The file could not be read."}
    except ImageInputError as exc:
        return {**row, "image": _EMPTY, "error": str(exc)}


class ModelActor:
    """Ray Data ``map_batches`` callable class: loads every model once, runs them on each batch."""

    def __init__(self, factories: Sequence[Callable[[], Classifier]]) -> None:
        self.classifiers = [factory() for factory in factories]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from PIL import Image

        ok = [i for i, error in enumerate(batch["error"]) if not error]
        n, m = len(batch["name"]), len(self.classifiers)
        tops = np.full((n, m, TOP_K), -1, np.int64)
        ms = np.zeros((n, m), np.float64)
        if ok:
            images = [Image.fromarray(np.asarray(batch["image"][i], dtype=np.uint8)) for i in ok]
            model_tops, model_ms = run_batch(self.classifiers, images)
            for j, (per_image, t) in enumerate(zip(model_tops, model_ms)):
                for row, top in zip(ok, per_image):
                    tops[row, j, : len(top)] = top
                ms[ok, j] = t
        return {"name": batch["name"], "label": batch["label"], "error": batch["error"], "tops": tops, "ms": ms}


def run_ray(dataset: Dataset, factories: Sequence[Callable[[], Classifier]], classifiers: Sequence[Classifier], *,
            batch_size: int, max_pixels: int, limit: int | None = None, address: str | None = None,
            progress: ProgressFn | None = None, cancel: threading.Event | None = None,
            actors: int | None = None) -> EvaluationReport:
    """Evaluate with Ray Data. ``classifiers`` (loaded in the driver) give the labels to match;
    ``factories`` build the same models inside each actor."""
    if dataset.kind == "zip":
        raise DatasetError("The Ray engine reads a folder or a CSV file that every worker can reach; "
                           "unpack the archive into a folder first.")
    import ray

    entries = dataset.entries[:limit] if limit else dataset.entries
    started_here = _connect(ray, address)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # same order as the local engine
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = actors or (gpus if gpus else max(1, cpus // 2))
        items = [{"name": e.name, "label": e.label, "ref": e.ref} for e in entries]
        blocks = max(1, min(len(items) // (4 * batch_size), 50 * cpus))  # not one task per few images
        ds = (ray.data.from_items(items, override_num_blocks=blocks)
              .map(decode, fn_kwargs={"max_pixels": max_pixels})
              .map_batches(ModelActor, fn_constructor_args=(list(factories),), batch_size=batch_size,
                           batch_format="numpy", concurrency=actors, num_gpus=1 if gpus else 0,
                           num_cpus=1))
        tally = Tally(model_sides(classifiers, dataset.classes))
        skipped = list(dataset.skipped)
        started = time.perf_counter()
        done, cancelled = 0, False
        for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
            for name, label, error, tops, ms in zip(batch["name"], batch["label"], batch["error"],
                                                    batch["tops"], batch["ms"]):
                done += 1
                if error:
                    skipped.append((str(name), str(error)))
                    continue
                tally.add(str(name), str(label), [tuple(int(i) for i in t if i >= 0) for t in tops],
                          [float(x) for x in ms])
            if progress is not None:
                progress(Progress(done, len(entries), time.perf_counter() - started))
            if cancel is not None and cancel.is_set():
                cancelled = done < len(entries)
                break
        return tally.report(skipped=skipped, planned=len(entries), cancelled=cancelled,
                            wall_s=time.perf_counter() - started, engine="ray", batch_size=batch_size)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray, address: str | None) -> bool:
    """Join ``address`` (a cluster), or start a small local instance; True when started here."""
    if ray.is_initialized():
        return False
    if address:
        package = Path(__file__).resolve().parents[1]  # ship this code to the cluster's workers
        ray.init(address=address, runtime_env={"py_modules": [str(package)]}, log_to_driver=False)
    else:
        # Local workers import what this process imports (a test's own model class included).
        paths = [os.path.abspath(p or ".") for p in sys.path if os.path.isdir(p or ".")]
        ray.init(num_cpus=LOCAL_CPUS, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}})
    return True
