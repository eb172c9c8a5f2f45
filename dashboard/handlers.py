"""Named callbacks between the Gradio components and the core, and the one error adapter.

Core exceptions become ``gr.Error`` with the core's message; anything unexpected is logged with
its traceback and shown as a short, curated message - never a stack trace, never error text in
a Label.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from dashboard.errors import DashboardError, EmptyImageError
from dashboard.models.runtimes import (
    DISPLAY_NAMES,
    ONNXRUNTIME_INT8,
    PYTORCH,
    join_choice,
    split_choice,
    validate_runtime,
)
from dashboard.service import Classification, ClassificationService

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
MAX_COMPARE = 4


def user_errors(fn: F) -> F:
    """Turn core errors into gr.Error messages; hide everything else behind a curated one."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DashboardError as exc:
            if exc.detail:  # server paths and library errors: for the operator, never the browser
                log.warning("%s: %s (%s)", fn.__name__, exc, exc.detail)
            # messages may quote user text (a model id); the browser renders them as HTML
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                "Something went wrong on the server while handling this request. "
                "Please try again; if it keeps happening, try another image or model.",
                print_exception=False,
            ) from None

    return wrapper  # type: ignore[return-value]


# Markdown punctuation that can start code, emphasis, links, tables or HTML; "_" only at a word's
# edge (inside a word, as in ResNet18_Weights, it is literal in CommonMark).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(text: object) -> str:
    """User-controlled text (a model id, a label, a folder name) made inert inside Markdown:
    HTML-escaped (<, >, &, quotes), then Markdown punctuation backslash-escaped."""
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), html.escape(str(text), quote=True))


def describe_load(result: Classification) -> str:
    load = result.load
    if result.repeated:
        return "answered from the result cache"
    if load.waited_ms > 0:
        return f"waited {load.waited_ms / 1e3:.1f} s for another request's load of this model"
    return "model cached" if load.cached else f"loaded in {load.load_ms / 1e3:.1f} s (first use)"


def model_card(result: Classification) -> str:
    """The one-line model card: parameters, input size, weights id, and how it was loaded."""
    info = result.info
    h, w = info.input_size
    return (f"**{md_text(info.display_name)}** · {info.num_params / 1e6:.1f}M parameters · input {h}×{w} · "
            f"{info.num_classes} classes · weights {md_text(info.weights_id)} · "
            f"{md_text(result.prediction.device)} · {describe_load(result)}{runtime_card(info)}")


def describe_choice(chosen: Sequence[object]) -> str:
    """What was chosen, in words: "resnet18 four times", "nothing", "resnet18"."""
    if not chosen:
        return "nothing"
    names = [html.escape(str(key)[:60]) for key in chosen[:MAX_COMPARE * 2]]
    distinct = list(dict.fromkeys(names))
    if len(distinct) == 1 and len(chosen) > 1:
        times = {2: "twice", 3: "three times", 4: "four times"}.get(len(chosen), f"{len(chosen)} times")
        return f"only {distinct[0]}, {times}"
    more = f" and {len(chosen) - len(names)} more" if len(chosen) > len(names) else ""
    return ", ".join(distinct) + more


def runtime_card(info) -> str:
    """The model card's runtime part: runtime, .onnx file size, parity or int8 agreement."""
    runtime = getattr(info, "runtime", PYTORCH)
    text = f" · runtime {md_text(DISPLAY_NAMES.get(runtime, runtime))}"
    if info.file_bytes:
        text += f" · file {info.file_bytes / 2**20:.1f} MB"
    return text + (f" · {md_text(info.runtime_note)}" if info.runtime_note else "")


def pair_choices(keys: Sequence[str], runtimes: Sequence[str] | None) -> list[str]:
    """Each model on each runtime, as "KEY@RUNTIME" choices (plain keys for PyTorch), without
    repeats; runtimes are validated here (the server), whatever the page offered."""
    chosen = list(dict.fromkeys(validate_runtime(r) for r in (runtimes or [PYTORCH]))) or [PYTORCH]
    pairs = [join_choice(str(key), runtime) if "@" not in str(key) else str(key)
             for key in keys for runtime in chosen]
    return list(dict.fromkeys(pairs))


class Handlers:
    """The callbacks of every tab, bound to one service (the process-wide model cache)."""

    def __init__(self, service: ClassificationService, export_dir: Path) -> None:
        self.service = service
        self.export_dir = export_dir

    def _announce_load(self, keys: Sequence[str], progress: gr.Progress, runtime: str | None = None) -> None:
        cold = [key for key in keys if not self.service.is_loaded(key, runtime)]
        if cold:
            names = ", ".join(self.service.spec(split_choice(key)[0]).display_name for key in cold)
            chosen = {split_choice(key, runtime)[1] for key in cold}
            int8 = ", int8 quantisation" if ONNXRUNTIME_INT8 in chosen else ""
            desc = (f"Loading {names} and exporting to ONNX Runtime (first use: export, parity check{int8}; "
                    "up to a minute unless exported ahead of time)…" if chosen - {PYTORCH}
                    else f"Loading {names} (first use, a few seconds)…")
            progress(0.05, desc=desc)

    def _run(self, image: str | None, keys: Sequence[str], top_k: float, progress: gr.Progress,
             runtime: str | None = None):
        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        self._announce_load(keys, progress, runtime)
        return self.service.compare_models(image, keys, top_k, runtime=runtime)

    def classify(self, image: str | None, key: str, top_k: float, progress: gr.Progress,
                 runtime: str | None = None):
        """One model on one runtime (default pytorch): (label values, latency table, model card)."""
        from dashboard.compare import latency_table

        (result,) = self._run(image, [key], top_k, progress, runtime)
        return result.prediction.label_dict(), latency_table([result]), model_card(result)

    def compare(self, image: str | None, keys: Sequence[str], top_k: float, progress: gr.Progress,
                runtimes: Sequence[str] | None = None):
        """2-4 models: a Label per slot, latency, agreement, chart data and the CSV file.

        With ``runtimes``, every chosen model runs on every chosen runtime (pairs "KEY@RUNTIME")."""
        from dashboard.compare import agreement_table, latency_chart_data, latency_table

        chosen = list(keys or [])
        keys = pair_choices(chosen, runtimes)
        if not 2 <= len(keys) <= MAX_COMPARE:
            if runtimes and len(set(map(str, runtimes))) > 1:
                raise gr.Error(f"Choose between 2 and {MAX_COMPARE} model and runtime pairs to compare "
                               f"(you chose {len(keys)}).", print_exception=False)
            raise gr.Error(f"Choose between 2 and {MAX_COMPARE} different models to compare "
                           f"(you chose {describe_choice(chosen)}).", print_exception=False)
        results = self._run(image, keys, top_k, progress)
        labels = [gr.update(value=r.prediction.label_dict(), label=r.info.display_name, visible=True)
                  for r in results]
        labels += [gr.update(value=None, visible=False)] * (MAX_COMPARE - len(results))
        latency = latency_table(results)
        chart = latency_chart_data(results)
        agreement = agreement_table(results)
        return (*labels, latency, agreement, chart, self._export_csv(latency, results))

    def _export_csv(self, latency, results: Sequence[Classification]) -> str:
        """The comparison as one tidy CSV (latency table + each model's top-1), written inside
        Gradio's cache folder so that delete_cache removes it."""
        table = latency.assign(
            **{"top-1": [r.prediction.top[0].label for r in results],
               "top-1 probability": [round(r.prediction.top[0].probability, 6) for r in results]}
        )
        self.export_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self.export_dir, prefix="comparison-", suffix=".csv")
        with os.fdopen(fd, "w", newline="") as f:
            table.to_csv(f, index=False)
        return path
