"""ONNX Runtime beside PyTorch: export, on-disk cache, parity gate, int8, sessions.

A loaded PyTorch Classifier goes in, a Classifier whose forward stage runs an ONNX Runtime
session comes out; preprocessing, labels and the three timed stages are the PyTorch path's.

- Export: ``torch.onnx.export(dynamo=True)`` (the torch.export-based exporter, which emits
  through onnxscript) from the very module that was loaded, with a dynamic batch axis so that
  merged batches keep working; the TorchScript exporter is the fallback for models the dynamo
  exporter cannot trace. Both give parity for torchvision CNNs and transformers ViT/DeiT.
- Cache: ``<cache root>/<model>/<runtime>-<digest>.onnx`` plus a ``.json`` record next to it.
  The cache root is the ``onnx_cache_dir`` setting, by default ``$XDG_CACHE_HOME/dashboard/onnx``
  (``~/.cache/dashboard/onnx``). The digest covers the weights' identity (sha256 of the
  torchvision checkpoint, the Hub snapshot's commit, or the files of a local directory), the
  exporter's version (torch, onnxscript, opset) and, for int8, onnxruntime's version; a file
  whose size or sha256 differs from its record is re-exported, and so is anything whose key
  changed (older files of that model and runtime are deleted).
- Parity gate (after Optimum's ONNX export check): PyTorch and ONNX Runtime run the same fixed
  inputs (example photos and a seeded random tensor, as one batch); probabilities must agree
  within ``PARITY_ATOL`` with the same top-5, or the runtime is refused for that model, and the
  refusal is recorded under the same key (re-checked when the weights or the exporter change).
- int8: ``onnxruntime.quantization.quantize_dynamic`` of the gated fp32 file; its top-1
  agreement and Jensen-Shannon divergence against fp32 on assets/examples are recorded and
  shown in the model card (no tolerance: int8 is expected to differ a little).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dashboard.errors import RuntimeUnavailableError
from dashboard.models.classifier import Classifier
from dashboard.models.registry import ModelSpec
from dashboard.models.runtimes import (
    ONNXRUNTIME,
    ONNXRUNTIME_INT8,
    DISPLAY_NAMES,
    PYTORCH,
    display_name,
    import_onnxruntime,
    validate_runtime,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-4  # max |p_torch - p_ort| over every class of every fixed input
PARITY_TOP = 5
OPSET = 18
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"
PARITY_PHOTOS = ("cat.jpg", "astronaut.jpg")
RECORD_VERSION = 1
_FOLDER_LOCKS: dict[Path, threading.Lock] = {}  # one export at a time per model folder, in-process
_FOLDER_LOCKS_GUARD = threading.Lock()
# Dynamic quantisation of MatMul/Gemm (ONNX Runtime's recommendation for transformers): the
# integer convolutions (ConvInteger) it makes of a CNN's Conv ran slower than fp32 here (ResNet-18
# on 2 cores, 242 vs 164 ms), so for CNNs only the classifier head is quantised.
INT8_OPS = ["MatMul", "Gemm"]


def default_cache_root() -> Path:
    """``$XDG_CACHE_HOME/dashboard/onnx``, or ``~/.cache/dashboard/onnx``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dashboard" / "onnx"


def cache_root(configured: str | os.PathLike | None = None) -> Path:
    """The onnx_cache_dir setting when given, else the default above."""
    return Path(configured).expanduser() if configured else default_cache_root()


# --- identities -----------------------------------------------------------------------------
def _sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weights_identity(spec: ModelSpec) -> str:
    """What names these weights: sha256 of the torchvision checkpoint, the Hub snapshot's commit,
    or sha256 of a local directory's model files."""
    if spec.backend == "torchvision":
        from dashboard.models.torchvision_backend import checkpoint_path

        return "sha256:" + _sha256_file(checkpoint_path(spec))
    if spec.weights == "local":
        digest = hashlib.sha256()
        for path in sorted(Path(spec.source).iterdir()):
            if path.is_file() and path.suffix in {".safetensors", ".bin", ".json"}:
                digest.update(path.name.encode() + b"\0" + _sha256_file(path).encode())
        return "local-sha256:" + digest.hexdigest()
    from huggingface_hub import snapshot_download

    # The snapshot folder's name is the commit the revision resolved to when it was loaded.
    folder = snapshot_download(spec.source, revision=spec.weights, local_files_only=True,
                               allow_patterns=["*.json"])
    return "hub-commit:" + Path(folder).name


def exporter_version() -> str:
    import onnxscript
    import torch

    return f"torch.onnx {torch.__version__} dynamo/onnxscript {onnxscript.__version__} opset {OPSET}"


def quantizer_version() -> str:
    return f"onnxruntime.quantization {import_onnxruntime().__version__} dynamic QInt8"


def _folder_name(spec: ModelSpec) -> str:
    if spec.weights == "local":  # a server path: never part of a name shown anywhere
        return "local-" + hashlib.sha256(spec.source.encode()).hexdigest()[:16]
    return spec.key.replace("/", "--")


@dataclass(frozen=True)
class CacheEntry:
    """Where one (model, runtime) export lives, and the key it was made under."""

    onnx: Path
    record: Path
    key: dict[str, str]

    @classmethod
    def of(cls, root: Path, spec: ModelSpec, runtime: str, identity: str) -> CacheEntry:
        key = {"model": spec.key if spec.weights != "local" else _folder_name(spec), "runtime": runtime,
               "weights": identity, "exporter": exporter_version()}
        if runtime == ONNXRUNTIME_INT8:
            key["quantizer"] = quantizer_version()
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        folder = root / _folder_name(spec)
        return cls(folder / f"{runtime}-{digest}.onnx", folder / f"{runtime}-{digest}.json", key)

    def read_record(self) -> dict[str, Any] | None:
        """The record, when it was written under this key; None when missing or unreadable."""
        try:
            record = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != self.key:
            return None
        return record

    def intact(self, record: dict[str, Any]) -> bool:
        """The .onnx file is the one the record describes (size first, then sha256)."""
        try:
            if self.onnx.stat().st_size != record.get("bytes"):
                return False
            return _sha256_file(self.onnx) == record.get("sha256")
        except OSError:
            return False

    def write_record(self, record: dict[str, Any]) -> None:
        _atomic_write(self.record, json.dumps({**record, "key": self.key, "version": RECORD_VERSION},
                                              indent=2).encode())

    def remove_stale(self) -> None:
        """Files of this model and runtime made under other keys (older weights or exporter)."""
        for path in self.onnx.parent.glob(f"{self.key['runtime']}-*"):
            stem = path.name.split(".", 1)[0]
            if stem.rsplit("-", 1)[0] == self.key["runtime"] and path not in (self.onnx, self.record):
                with contextlib.suppress(OSError):
                    path.unlink()


@contextlib.contextmanager
def _quiet_tools():
    """The exporter (onnxscript, onnx_ir) and the quantiser log every pass at INFO, the quantiser
    on the root logger: raise them to ERROR for the duration, and silence their warnings."""
    names = ("", "onnxscript", "onnx_ir", "torch.onnx", "torch._export", "torch.export")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(max(logger.level, logging.ERROR))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --- export and parity ----------------------------------------------------------------------
def _logits_module(classifier: Classifier) -> torch.nn.Module:
    """The loaded model as ``pixel_values -> logits`` (transformers return an output object)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = classifier.model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return classifier._logits_of(self.model(pixel_values))

    return Logits().eval()


def export(classifier: Classifier, path: Path) -> str:
    """Export the classifier's loaded module to ``path`` with a dynamic batch axis; returns the
    exporter used ("dynamo", or "torchscript" when the dynamo exporter could not trace it)."""
    import torch

    module = _logits_module(classifier)
    h, w = classifier.info.input_size
    dummy = torch.zeros(2, 3, h, w, device=classifier.device)  # batch 2: 1 would be specialised
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
    names = dict(input_names=["pixel_values"], output_names=["logits"])
    try:
        with _quiet_tools(), torch.inference_mode(False), torch.no_grad():
            try:
                batch = torch.export.Dim("batch", min=1, max=1024)
                torch.onnx.export(module, (dummy,), str(tmp), dynamo=True, external_data=False,
                                  opset_version=OPSET, dynamic_shapes={"pixel_values": {0: batch}},
                                  verbose=False, **names)
                exporter = "dynamo"
            except Exception as exc:  # noqa: BLE001 - the second exporter gets its chance
                log.warning("dynamo ONNX export of %s failed (%s); trying the TorchScript exporter",
                            classifier.info.key, type(exc).__name__)
                torch.onnx.export(module, (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
                                  dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                                  **names)
                exporter = "torchscript"
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return exporter


def parity_inputs(classifier: Classifier) -> torch.Tensor:
    """The fixed inputs of the gate: example photos through the model's own preprocessing, and
    one seeded random tensor (values no photo produces), as one batch of 3."""
    import torch
    from PIL import Image

    images = []
    for name in PARITY_PHOTOS:
        with contextlib.suppress(OSError), Image.open(EXAMPLES_DIR / name) as im:
            images.append(im.convert("RGB"))
    h, w = classifier.info.input_size
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 3, h, w, generator=generator)
    if not images:
        return noise
    return torch.cat([classifier.preprocess(images).float().cpu(), noise])


@dataclass(frozen=True)
class ParityReport:
    max_abs_diff: float
    same_top: bool
    inputs: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= PARITY_ATOL and self.same_top

    def describe(self) -> str:
        return (f"max |Δp| {self.max_abs_diff:.1e} (limit {PARITY_ATOL:.0e}), top-{PARITY_TOP} "
                f"{'the same' if self.same_top else 'different'} on {self.inputs} fixed inputs")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def compare_probabilities(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    """Max absolute difference of probabilities, and whether each row keeps its top-5.

    Classes whose reference probabilities differ by less than the observed difference are ties
    (random-init models have near-uniform outputs): their order is numerical noise, not a
    disagreement, so a top-5 counts as the same when its reference probabilities match.
    """
    diff = np.abs(reference - candidate)
    same = True
    for ref, cand, d in zip(reference, candidate, diff):
        k = min(PARITY_TOP, ref.shape[-1])
        ref_top = np.argsort(-ref, kind="stable")[:k]
        cand_top = np.argsort(-cand, kind="stable")[:k]
        if not np.array_equal(ref_top, cand_top):
            tie = min(2 * float(d.max()), PARITY_ATOL) + 1e-12  # never wider than the tolerance
            same = same and bool(np.all(np.abs(ref[cand_top] - ref[ref_top]) <= tie))
    return ParityReport(float(diff.max()), same, int(reference.shape[0]))


def torch_probabilities(classifier: Classifier, inputs: torch.Tensor) -> np.ndarray:
    import torch

    with torch.inference_mode():
        logits = classifier._logits_of(classifier.model(inputs.to(classifier.device)))
    return _softmax(logits.float().cpu().numpy())


def session_probabilities(session, inputs: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return _softmax(session.run(None, {name: np.ascontiguousarray(inputs, dtype=np.float32)})[0])


# --- sessions -------------------------------------------------------------------------------
def intra_op_threads(workers: int) -> int:
    """The same rule as torch's (service._configure_torch_threads): cores / workers, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def providers_for(device: str) -> list:
    """CUDA first when the model's device is a GPU and onnxruntime has its CUDA provider."""
    ort = import_onnxruntime()
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: Path, device: str, workers: int):
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads(workers)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads would keep burning the cores after a forward, slowing the torch models
    # that share them (the Compare tab runs both): wait on the OS instead.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=providers_for(device))


class OnnxClassifier(Classifier):
    """The PyTorch Classifier's preprocessing and labels, with an ONNX Runtime forward stage."""

    def __init__(self, base: Classifier, session, info, path: Path | None = None) -> None:
        import torch

        # Inputs stay on the CPU: onnxruntime takes numpy arrays (its CUDA provider copies them).
        super().__init__(info, None, base._transform, base.labels, torch.device("cpu"),
                         normalization=base.normalization)
        self.session = session
        self.onnx_path = path  # the cached file the session runs (benchmarks open more sessions on it)
        self._input_name = session.get_inputs()[0].name
        provider = session.get_providers()[0]
        self.device_label = "cuda" if provider == "CUDAExecutionProvider" else "cpu"

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        import torch

        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        if self.info.runtime == ONNXRUNTIME_INT8 and len(array) > 1:
            # Dynamic quantisation scales activations over the whole input tensor, so a merged
            # batch would make one request's answer depend on its neighbours: one row at a time.
            rows = [self.session.run(None, {self._input_name: array[i:i + 1]})[0] for i in range(len(array))]
            return torch.from_numpy(np.concatenate(rows))
        return torch.from_numpy(self.session.run(None, {self._input_name: array})[0])


# --- the front door -------------------------------------------------------------------------
def build(base: Classifier, spec: ModelSpec, runtime: str, *, cache_dir: str | os.PathLike | None = None,
          workers: int = 1, device: str = "cpu") -> OnnxClassifier:
    """An ONNX Runtime classifier for ``base`` (a freshly loaded PyTorch Classifier of ``spec``):
    reused from the cache when intact, else exported, gated and (int8) quantised first."""
    runtime = validate_runtime(runtime)
    if runtime == PYTORCH:
        raise ValueError("build() makes ONNX Runtime classifiers; PyTorch needs none")
    import_onnxruntime()  # a clear message when onnxruntime is missing, before any work
    root = cache_root(cache_dir)
    identity = weights_identity(spec)
    with _FOLDER_LOCKS_GUARD:  # fp32 and int8 of one model may load at once: they share the fp32 file
        lock = _FOLDER_LOCKS.setdefault(root / _folder_name(spec), threading.Lock())
    with lock:
        fp32 = _ensure_fp32(base, spec, root, identity)
        entry, record = fp32
        if runtime == ONNXRUNTIME_INT8:
            entry, record = _ensure_int8(base, spec, root, identity, fp32)
    session = open_session(entry.onnx, device, workers)
    note = _note(runtime, record)
    info = dataclasses.replace(
        base.info, display_name=display_name(base.info.display_name, runtime), runtime=runtime,
        weight_bytes=record["bytes"], file_bytes=record["bytes"], runtime_note=note,
    )
    return OnnxClassifier(base, session, info, entry.onnx)


def _refuse(spec: ModelSpec, runtime: str, why: str) -> RuntimeUnavailableError:
    return RuntimeUnavailableError(
        f"{spec.display_name} cannot run on {DISPLAY_NAMES[runtime]}: {why} "
        f"Use the {PYTORCH} runtime for this model."
    )


def _reusable(entry, record: dict | None, spec: ModelSpec, runtime: str, what: str) -> bool:
    """Whether the cached ``what`` of ``runtime`` can be used as it is; a remembered refusal raises."""
    if record is not None and record.get("refused"):
        raise _refuse(spec, runtime, record["refused"])
    if record is not None and entry.intact(record):
        log.info("%s: reusing the %s %s", spec.key, what, entry.onnx.name)
        return True
    return False


def _ensure_fp32(base: Classifier, spec: ModelSpec, root: Path, identity: str):
    entry = CacheEntry.of(root, spec, ONNXRUNTIME, identity)
    record = entry.read_record()
    if _reusable(entry, record, spec, ONNXRUNTIME, "ONNX export"):
        return entry, record
    if record is not None:
        log.warning("%s: the cached ONNX file is damaged or changed; exporting it again", spec.key)
    log.info("%s: exporting to ONNX (first use of this runtime with these weights)", spec.key)
    start = time.perf_counter()
    try:
        exporter = export(base, entry.onnx)
    except Exception as exc:  # noqa: BLE001 - both exporters failed: refuse, keep serving PyTorch
        log.exception("%s: ONNX export failed", spec.key)
        why = f"the model could not be exported to ONNX ({type(exc).__name__})."
        entry.write_record({"refused": why})
        raise _refuse(spec, ONNXRUNTIME, why) from exc
    export_s = time.perf_counter() - start
    inputs = parity_inputs(base)
    session = open_session(entry.onnx, "cpu", 1)
    report = compare_probabilities(torch_probabilities(base, inputs), session_probabilities(session, inputs.numpy()))
    del session
    if not report.ok:
        why = f"the exported model disagrees with PyTorch on the parity check ({report.describe()})."
        log.error("%s: parity gate refused the ONNX export: %s", spec.key, report.describe())
        with contextlib.suppress(OSError):
            entry.onnx.unlink()
        entry.write_record({"refused": why, "parity": dataclasses.asdict(report)})
        raise _refuse(spec, ONNXRUNTIME, why)
    log.info("%s: parity gate passed (%s)", spec.key, report.describe())
    record = {"bytes": entry.onnx.stat().st_size, "sha256": _sha256_file(entry.onnx), "exporter": exporter,
              "export_s": round(export_s, 2), "parity": dataclasses.asdict(report), "created": time.time()}
    entry.write_record(record)
    entry.remove_stale()
    return entry, entry.read_record() or record


def _ensure_int8(base: Classifier, spec: ModelSpec, root: Path, identity: str, fp32) -> tuple:
    entry = CacheEntry.of(root, spec, ONNXRUNTIME_INT8, identity)
    record = entry.read_record()
    if _reusable(entry, record, spec, ONNXRUNTIME_INT8, "int8 ONNX file"):
        return entry, record
    log.info("%s: quantising the ONNX export to int8 (dynamic)", spec.key)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32_entry, _ = fp32
    tmp = entry.onnx.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{entry.onnx.name}")
    try:
        with _quiet_tools():
            quantize_dynamic(fp32_entry.onnx, tmp, weight_type=QuantType.QInt8,
                             op_types_to_quantize=INT8_OPS)
        session = open_session(tmp, "cpu", 1)  # quantised graphs a provider cannot run fail here
        os.replace(tmp, entry.onnx)
    except Exception as exc:  # noqa: BLE001
        log.exception("%s: int8 quantisation failed", spec.key)
        why = f"the ONNX export could not be quantised to int8 ({type(exc).__name__})."
        entry.write_record({"refused": why})
        raise _refuse(spec, ONNXRUNTIME_INT8, why) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    agreement = int8_agreement(base, open_session(fp32_entry.onnx, "cpu", 1), session)
    record = {"bytes": entry.onnx.stat().st_size, "sha256": _sha256_file(entry.onnx),
              "int8": agreement, "created": time.time()}
    entry.write_record(record)
    entry.remove_stale()
    return entry, entry.read_record() or record



def int8_agreement(base: Classifier, fp32_session, int8_session) -> dict[str, Any]:
    """Top-1 agreement and Jensen-Shannon divergence (bits) of int8 against fp32 on the photos
    of assets/examples, each through the model's own preprocessing."""
    from PIL import Image

    from dashboard.compare import js_divergence

    photos = sorted(EXAMPLES_DIR.glob("*.jpg"))
    images = []
    for path in photos:
        with Image.open(path) as im:
            images.append(im.convert("RGB"))
    if not images:
        return {"photos": 0}
    inputs = base.preprocess(images).float().cpu().numpy()
    p32 = session_probabilities(fp32_session, inputs)
    p8 = session_probabilities(int8_session, inputs)
    js = [js_divergence(a, b) for a, b in zip(p32, p8)]
    return {"photos": len(images), "top1_agreement": float(np.mean(p32.argmax(-1) == p8.argmax(-1))),
            "js_mean": float(np.mean(js)), "js_max": float(np.max(js))}


def _note(runtime: str, record: dict[str, Any]) -> str:
    if runtime == ONNXRUNTIME:
        parity = record.get("parity") or {}
        return f"parity with PyTorch: max |Δp| {parity.get('max_abs_diff', float('nan')):.1e}"
    int8 = record.get("int8") or {}
    if not int8.get("photos"):
        return "int8 vs fp32: no example photos to compare on"
    return (f"int8 vs fp32 on {int8['photos']} example photos: top-1 agreement "
            f"{int8['top1_agreement']:.0%}, mean JS divergence {int8['js_mean']:.2g} bits")
