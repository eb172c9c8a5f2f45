"""Runtimes a model can run on, and the "KEY@RUNTIME" choice encoding. Cheap to import.

``pytorch`` is the default everywhere. ``onnxruntime`` runs an fp32 ONNX export of the same
weights, ``onnxruntime-int8`` its dynamic int8 quantisation (dashboard.models.onnx_backend).

A model and a runtime travel together as one string ``KEY@RUNTIME`` (``resnet18@onnxruntime``,
``google/vit-base-patch16-224@onnxruntime-int8``): Hub ids cannot contain ``@``, so the last
``@`` always separates the two; a key without ``@`` runs on the runtime asked for separately
(``pytorch`` unless said otherwise). Local model directories whose name contains ``@`` cannot
be chosen this way.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence

from dashboard.errors import RuntimeUnavailableError, UnknownRuntimeError

PYTORCH = "pytorch"
ONNXRUNTIME = "onnxruntime"
ONNXRUNTIME_INT8 = "onnxruntime-int8"
RUNTIMES: tuple[str, ...] = (PYTORCH, ONNXRUNTIME, ONNXRUNTIME_INT8)
DEFAULT_RUNTIME = PYTORCH
DISPLAY_NAMES = {PYTORCH: "PyTorch", ONNXRUNTIME: "ONNX Runtime", ONNXRUNTIME_INT8: "ONNX Runtime int8"}
SEPARATOR = "@"
INSTALL_HINT = "pip install onnxruntime onnx onnxscript"


def validate_runtime(runtime: str | None) -> str:
    """The runtime name itself (None or "" -> pytorch); anything else is refused with the valid list."""
    if runtime is None:
        return DEFAULT_RUNTIME
    text = runtime.strip() if isinstance(runtime, str) else None
    if text == "":
        return DEFAULT_RUNTIME
    if text not in RUNTIMES:
        shown = repr(runtime)[:60]  # user text: quoted and cut, never echoed whole
        raise UnknownRuntimeError(f"Unknown runtime {shown}. Valid runtimes: {', '.join(RUNTIMES)}.")
    return text


def split_choice(choice: str, default_runtime: str | None = None) -> tuple[str, str]:
    """"resnet18@onnxruntime" -> ("resnet18", "onnxruntime"); "resnet18" -> ("resnet18", default)."""
    text = (choice or "").strip()
    if SEPARATOR in text:
        key, runtime = text.rsplit(SEPARATOR, 1)
        return key.strip(), validate_runtime(runtime or DEFAULT_RUNTIME)
    return text, validate_runtime(default_runtime)


def join_choice(key: str, runtime: str) -> str:
    """The inverse of split_choice; plain ``key`` for PyTorch, so old keys stay what they were."""
    runtime = validate_runtime(runtime)
    return key if runtime == PYTORCH else f"{key}{SEPARATOR}{runtime}"


def display_name(model_name: str, runtime: str) -> str:
    """"ResNet-18" on PyTorch stays "ResNet-18"; otherwise "ResNet-18 · ONNX Runtime int8"."""
    return model_name if runtime == PYTORCH else f"{model_name} · {DISPLAY_NAMES[runtime]}"


def onnxruntime_missing_reason() -> str | None:
    """None when onnxruntime can be found; otherwise why not (cheap: the package is not imported)."""
    try:
        found = importlib.util.find_spec("onnxruntime") is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    return f"ONNX Runtime is not installed on this server ({INSTALL_HINT}), so only PyTorch is offered."


def available_runtimes() -> list[str]:
    """The runtimes this process can offer (for selectors): PyTorch always, ONNX when installed."""
    return list(RUNTIMES) if onnxruntime_missing_reason() is None else [PYTORCH]


def import_onnxruntime():
    """The onnxruntime module, or a RuntimeUnavailableError saying why and what to do."""
    reason = onnxruntime_missing_reason()
    if reason is None:
        try:
            return importlib.import_module("onnxruntime")
        except ImportError as exc:  # installed but broken (a missing shared library ...)
            reason = (f"ONNX Runtime is installed but cannot be imported on this server "
                      f"({type(exc).__name__}); only PyTorch is available.")
    raise RuntimeUnavailableError(reason.replace("so only PyTorch is offered", "so only PyTorch is available")
                                  + f" Valid here: {PYTORCH}.")


def choices(runtimes: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs for a selector."""
    return [(DISPLAY_NAMES[r], r) for r in (available_runtimes() if runtimes is None else runtimes)]
