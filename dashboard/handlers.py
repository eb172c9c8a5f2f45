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
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from dashboard.errors import DashboardError, EmptyImageError
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
            f"{md_text(result.prediction.device)} · {describe_load(result)}")


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


class Handlers:
    """The callbacks of every tab, bound to one service (the process-wide model cache)."""

    def __init__(self, service: ClassificationService, export_dir: Path) -> None:
        self.service = service
        self.export_dir = export_dir
        self._cancel_events: dict[str, threading.Event] = {}  # Evaluate tab: one per session running

    def _announce_load(self, keys: Sequence[str], progress: gr.Progress) -> None:
        cold = [key for key in keys if not self.service.is_loaded(key)]
        if cold:
            names = ", ".join(self.service.spec(key).display_name for key in cold)
            progress(0.05, desc=f"Loading {names} (first use, a few seconds)…")

    def _run(self, image: str | None, keys: Sequence[str], top_k: float, progress: gr.Progress):
        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        self._announce_load(keys, progress)
        return self.service.compare_models(image, keys, top_k)

    def classify(self, image: str | None, key: str, top_k: float, progress: gr.Progress):
        """One model: (label values, latency table, model card)."""
        from dashboard.compare import latency_table

        (result,) = self._run(image, [key], top_k, progress)
        return result.prediction.label_dict(), latency_table([result]), model_card(result)

    def compare(self, image: str | None, keys: Sequence[str], top_k: float, progress: gr.Progress):
        """2-4 models: a Label per slot, latency, agreement, chart data and the CSV file."""
        from dashboard.compare import agreement_table, latency_chart_data, latency_table

        chosen = list(keys or [])
        keys = list(dict.fromkeys(chosen))
        if not 2 <= len(keys) <= MAX_COMPARE:
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

    # --- Evaluate tab: accuracy on an uploaded .zip of labelled images (dashboard/evaluate) -----
    def evaluate(self, archive: str | None, keys: Sequence[str], session: str, progress: gr.Progress):
        """Summary, per-class, confusions, disagreement, gallery, CSV file and a status line."""
        if not archive:
            raise gr.Error("Upload a .zip of labelled images first (one folder per class).", print_exception=False)
        keys = list(dict.fromkeys(keys or []))
        if not 1 <= len(keys) <= MAX_COMPARE:
            raise gr.Error(f"Choose between 1 and {MAX_COMPARE} models to evaluate (you chose {len(keys)}).",
                           print_exception=False)
        self._announce_load(keys, progress)
        cancel = self._cancel_events.setdefault(session, threading.Event())
        cancel.clear()

        def report_progress(p) -> None:
            progress(p.fraction, desc=f"Evaluating: {p.describe()}")

        try:
            report = self.service.evaluate(archive, keys, progress=report_progress, cancel=cancel, upload=True)
        finally:
            self._cancel_events.pop(session, None)
        self.export_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self.export_dir, prefix="evaluation-", suffix=".csv")
        os.close(fd)
        report.write_csv(path)
        gallery = [(item.image, item.caption) for item in report.gallery]
        return (evaluation_status(report), report.summary_table(), report.per_class_table(),
                report.confusion_table(), report.disagreement_table(), gallery, path)

    def cancel_evaluation(self, session: str) -> None:
        """Stop this visitor's run after the batch in progress."""
        event = self._cancel_events.get(session)
        if event is not None:
            event.set()


def evaluation_status(report) -> str:
    """One paragraph: how many images, what was skipped or not matched, and whether it was cancelled."""
    lines = [f"**{report.images:,} images evaluated** of {report.planned:,} in {report.wall_s:.1f} s "
             f"(batches of {report.batch_size})."]
    if report.cancelled:
        lines.append(f"**Cancelled** after {report.images:,} images: the numbers cover those only.")
    for m in report.models:
        if m.unmatched_classes:
            names = ", ".join(html.escape(c) for c in m.unmatched_classes)
            lines.append(f"{html.escape(m.key)}: {m.unmatched_images} images in classes that match none of its "
                         f"labels, not scored: {names}.")
    if report.skipped:
        reasons: dict[str, int] = {}
        for _, reason in report.skipped:
            reasons[reason] = reasons.get(reason, 0) + 1
        listed = "; ".join(f"{n} × {html.escape(r)}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
        lines.append(f"Skipped {len(report.skipped)} files: {listed}")
    return "\n\n".join(lines)
