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
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from dashboard.cards import answer_title, card_details
from dashboard.errors import DashboardError, EmptyImageError
from dashboard.markdown import md_text
from dashboard.models.runtimes import (
    DISPLAY_NAMES,
    ONNXRUNTIME_INT8,
    PYTORCH,
    join_choice,
    split_choice,
    validate_runtime,
)
from dashboard.palette import colour_map
from dashboard.service import Classification, ClassificationService, ModelFailure

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


def describe_load(result: Classification) -> str:
    load = result.load
    if result.repeated:
        return "answered from the result cache (its times are the earlier request's)"
    if load.waited_ms > 0:
        return f"waited {load.waited_ms / 1e3:.1f} s for another request's load of this model"
    return "model cached" if load.cached else f"loaded in {load.load_ms / 1e3:.1f} s (first use)"


def model_card(result: Classification) -> str:
    """The one-line model card: parameters, input size, weights id, and how it was loaded."""
    info = result.info
    h, w = info.input_size
    return (f"**{md_text(info.display_name)}** · {info.num_params / 1e6:.1f}M parameters · input {h}×{w} · "
            f"{info.num_classes} classes · weights {md_text(info.weights_id)} · "
            f"{md_text(result.prediction.device)} · {describe_load(result)}{runtime_card(info)}"
            + card_details(result))


def failure_title(failure: ModelFailure) -> str:
    """A failed model's slot title: its name, "failed" and the short reason (never a Label value)."""
    runtime = "" if failure.runtime == PYTORCH else f" · {DISPLAY_NAMES.get(failure.runtime, failure.runtime)}"
    return f"{failure.display_name}{runtime} — failed: {failure.message}"


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
        self._cancel_events: dict[str, threading.Event] = {}  # Evaluate tab: one per session running

    def _announce_load(self, keys: Sequence[str], progress: gr.Progress, runtime: str | None = None) -> None:
        from dashboard.loading import load_notice

        choices = [split_choice(key, runtime) for key in keys]
        if all(rt == PYTORCH for _, rt in choices):
            notice = load_notice(self.service, [key for key, _ in choices])
            if notice:
                progress(0.05, desc=notice)
            return
        cold = [key for key in keys if not self.service.is_loaded(key, runtime)]
        if cold:
            names = ", ".join(self.service.spec(split_choice(key)[0]).display_name for key in cold)
            chosen = {split_choice(key, runtime)[1] for key in cold}
            int8 = ", int8 quantisation" if ONNXRUNTIME_INT8 in chosen else ""
            desc = (f"Loading {names} and exporting to ONNX Runtime (first use: export, parity check{int8}; "
                    "up to a minute unless exported ahead of time)…" if chosen - {PYTORCH}
                    else f"Loading {names} (first use, a few seconds)…")
            progress(0.05, desc=desc)

    def _prepare(self, image: str | None, keys: Sequence[str], progress: gr.Progress,
                 runtime: str | None = None) -> None:
        """Before classifying: an image is needed; say which models load for the first time."""
        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        self._announce_load(keys, progress, runtime)

    def classify(self, image: str | None, key: str, top_k: float, progress: gr.Progress,
                 runtime: str | None = None):
        """One model on one runtime (default pytorch): (label values, latency table, model card)."""
        from dashboard.compare import latency_table

        self._prepare(image, [key], progress, runtime)
        (result,) = self.service.compare_models(image, [key], top_k, runtime=runtime)
        return result.prediction.label_dict(), latency_table([result]), model_card(result)

    def compare(self, image: str | None, keys: Sequence[str], top_k: float, progress: gr.Progress,
                runtimes: Sequence[str] | None = None):
        """2-4 models: a Label per slot, latency, agreement, chart data and the CSV file.

        With ``runtimes``, every chosen model runs on every chosen runtime (pairs "KEY@RUNTIME")."""
        from dashboard.compare import agreement_table, latency_chart_data, latency_table

        keys = self.compare_pairs(keys, runtimes)
        self._prepare(image, keys, progress)
        answers = self.service.classify_each(image, keys, top_k)
        worked = [r for r in answers if isinstance(r, Classification)]
        if not worked:  # nothing to show: the first model's reason, as for a single model
            raise answers[0].error
        labels = [gr.update(value=r.prediction.label_dict(), label=answer_title(r), visible=True)
                  if isinstance(r, Classification) else
                  gr.update(value=None, label=failure_title(r), visible=True) for r in answers]
        labels += [gr.update(value=None, visible=False)] * (MAX_COMPARE - len(answers))
        latency = latency_table(worked)
        chart = latency_chart_data(worked)
        agreement = agreement_table(worked)
        csv_path = self._export_csv(latency, worked, answers)
        return (*labels, latency, agreement, chart_update(chart), gr.update(value=csv_path, interactive=True))

    def compare_pairs(self, keys: Sequence[str] | None, runtimes: Sequence[str] | None) -> list[str]:
        """The "KEY@RUNTIME" pairs to compare, or a gr.Error saying why not (2 to 4 of them)."""
        chosen = list(keys or [])
        pairs = pair_choices(chosen, runtimes)
        if not 2 <= len(pairs) <= MAX_COMPARE:
            if runtimes and len(set(map(str, runtimes))) > 1:
                raise gr.Error(f"Choose between 2 and {MAX_COMPARE} model and runtime pairs to compare "
                               f"(you chose {len(pairs)}).", print_exception=False)
            raise gr.Error(f"Choose between 2 and {MAX_COMPARE} different models to compare "
                           f"(you chose {describe_choice(chosen)}).", print_exception=False)
        return pairs

    def check_compare(self, image: str | None, keys: Sequence[str] | None, runtimes: Sequence[str] | None) -> None:
        """What Compare refuses before anything is cleared or run: no image, a wrong number of models."""
        self.compare_pairs(keys, runtimes)
        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")

    def cleared_compare(self, keys: Sequence[str] | None, runtimes: Sequence[str] | None) -> tuple:
        """Compare's outputs emptied for the models now chosen: a titled, empty slot per chosen pair
        (at most four), no tables, no chart, and a disabled Download CSV button."""
        try:
            pairs = pair_choices(list(keys or []), runtimes)[:MAX_COMPARE]
        except DashboardError:  # an unknown runtime: no titles, the run will say why
            pairs = []
        titles = []
        for pair in pairs:
            key, runtime = split_choice(pair)
            try:
                name = self.service.spec(key).display_name
            except DashboardError:
                name = key[:60]
            titles.append(name if runtime == PYTORCH else f"{name} · {DISPLAY_NAMES.get(runtime, runtime)}")
        labels = [gr.update(value=None, label=title, visible=True) for title in titles]
        labels += [gr.update(value=None, visible=False)] * (MAX_COMPARE - len(labels))
        return (*labels, None, None, None, gr.update(value=None, interactive=False))

    def fair_timing(self, image: str | None, keys: Sequence[str], runs: object, progress: gr.Progress,
                    runtimes: Sequence[str] | None = None):
        """Fair timing of 1-4 model and runtime pairs: the table of median and spread per stage."""
        from dashboard.timing import check_runs, timing_table

        runs = check_runs(runs, self.service.settings.max_timing_runs)  # before anything else is done
        keys = pair_choices(list(keys or []), runtimes)
        if not 1 <= len(keys) <= MAX_COMPARE:
            raise gr.Error(f"Choose between 1 and {MAX_COMPARE} model and runtime pairs to time "
                           f"(you chose {len(keys)}).", print_exception=False)
        self._prepare(image, keys, progress)
        progress(0.1, desc=f"Timing {len(keys)} model(s): one warm-up run, then {runs} timed runs each…")
        return timing_table(self.service.time_models(image, keys, runs))

    def model_facts(self, keys: Sequence[str]):
        """The facts table of ``keys``, the accuracy-against-latency plot data (reference top-1,
        latency measured on this server) and a note naming the models left out of the plot."""
        from dashboard.models.facts import accuracy_latency, facts_table, is_known, model_facts

        specs = [self.service.spec(k) for k in dict.fromkeys(keys or [])]
        measured = self.service.measured.medians()
        left_out = []
        for spec in specs:
            if not is_known(spec.key) or model_facts(spec.key).top1 is None:
                left_out.append(f"{spec.display_name} (reference accuracy unknown)")
            elif spec.key not in measured:
                left_out.append(f"{spec.display_name} (not run on this server yet)")
        plotted = accuracy_latency({s.key: measured[s.key] for s in specs if s.key in measured})
        note = f"Not plotted: {'; '.join(left_out)}." if left_out else ""
        # each model in the colour of its position among the ticked ones, as in the Labels
        scatter = gr.update(value=plotted, color_map=colour_map([s.display_name for s in specs]))
        return facts_table([s.key for s in specs]), scatter, note

    def _export_csv(self, latency, results: Sequence[Classification],
                    answers: Sequence[object] | None = None) -> str:
        """The comparison as one tidy CSV (latency table + each model's top-1, a status column, and
        a row per failed model with its reason), written inside Gradio's cache folder so that
        delete_cache removes it."""
        import pandas as pd

        table = latency.assign(
            **{"top-1": [r.prediction.top[0].label for r in results],
               "top-1 probability": [round(r.prediction.top[0].probability, 6) for r in results],
               "status": "ok", "reason": ""}
        )
        if answers is not None and any(isinstance(a, ModelFailure) for a in answers):
            ok = iter(table.to_dict("records"))  # the worked models' rows, in their order
            rows = [next(ok) if isinstance(a, Classification) else
                    {"model": a.display_name, "runtime": a.runtime, "status": "failed", "reason": a.message}
                    for a in answers]  # one row per model, in the ticked order
            table = pd.DataFrame(rows, columns=table.columns)
        self.export_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self.export_dir, prefix="comparison-", suffix=".csv")
        with os.fdopen(fd, "w", newline="") as f:
            table.to_csv(f, index=False)
        return path

    def model_view(self, image: str | None, key: str, runtime: str | None = None):
        """The model's own input for the image (its resize and crop, un-normalised) and a caption."""
        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        view, info = self.service.model_view(image, key, runtime)
        h, w = info.input_size
        return view, (f"**{md_text(info.display_name)}** is given this {w}×{h} image: the photo after its own "
                      "preprocessing (resize and crop), shown before normalisation. Anything outside it is "
                      "never seen.")

    # --- robustness (issue 11): perturbations and sweeps -------------------------------------------
    def perturb_preview(self, image: str | None, perturbation: str, strength: float, seed: float | None,
                        x: float, y: float):
        """The perturbed image (display size) and a line saying what was applied."""
        from dashboard.perturb import for_display

        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        perturbed = self.service.perturb_preview(image, perturbation, strength, seed, x, y)
        return for_display(perturbed.image), _perturbed_caption(perturbed)

    def robustness(self, image: str | None, keys: Sequence[str], perturbation: str, strength: float,
                   seed: float | None, x: float, y: float, top_k: float, progress: gr.Progress,
                   runtime: str | None = None):
        """The preview and its caption, a Label per model on the perturbed image (flagged when its
        top-1 differs from the clean image's; hidden slots beyond the models chosen) and a summary."""
        from dashboard.perturb import MAX_MODELS, check_models, for_display

        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        keys = check_models(keys)
        self._announce_load(keys, progress, runtime)
        result = self.service.robustness(image, keys, perturbation, strength, seed, x, y, int(top_k),
                                         runtime=runtime)
        labels = []
        for answer in result.answers:
            name, clean = answer.perturbed.info.display_name, answer.clean.prediction.top[0].label
            flag = f"⚠ top-1 changed (clean image: {clean})" if answer.changed else "same top-1 as the clean image"
            labels.append(gr.update(value=answer.perturbed.prediction.label_dict(), label=f"{name} · {flag}",
                                    visible=True, elem_classes=["changed"] if answer.changed else []))
        labels += [gr.update(value=None, visible=False)] * (MAX_MODELS - len(labels))
        changed = [a.perturbed.info.display_name for a in result.answers if a.changed]
        summary = (f"At strength {result.perturbed.strength:g}: "
                   + (f"**the answer changed** for {', '.join(changed)}." if changed
                      else "every model keeps its clean top-1 class."))
        return (for_display(result.perturbed.image), _perturbed_caption(result.perturbed), *labels, summary)

    def sweep(self, image: str | None, keys: Sequence[str], perturbation: str, steps: float,
              seed: float | None, x: float, y: float, progress: gr.Progress, runtime: str | None = None):
        """The clean-top-1 probability curves, where each answer first changes, and the images."""
        from dashboard.perturb import check_models, for_display

        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        keys = check_models(keys)
        self._announce_load(keys, progress, runtime)
        result = self.service.sweep(image, keys, perturbation, steps, seed, x, y, runtime=runtime)
        names = [m.info.display_name for m in result.models]
        curve = gr.update(value=result.curve_frame(), color_map=colour_map(names))
        gallery = [(for_display(img, 320), f"strength {s:.2f} · {result.describe(i)}")
                   for i, (img, s) in enumerate(zip(result.images, result.strengths))]
        return curve, result.change_frame(), gallery

    # --- explanations: heatmaps ("why this class?"), see dashboard/explain --------------------
    def explain(self, image: str | None, key: str, target: str | None, method: str | None,
                opacity: float | None, progress: gr.Progress, runtime: str | None = None):
        """One model's heatmap: (overlay image, caption, metadata). PyTorch only (the service
        refuses another runtime with the reason)."""
        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        spec = self.service.explainable_spec(key, runtime)  # another runtime: refused before anything loads
        self._announce_load([spec.key], progress)
        progress(0.3, desc=f"Computing the heatmap of {spec.display_name}…")
        result = self.service.explain(image, key, target=(target or "").strip() or None,
                                      method=method, opacity=opacity, runtime=runtime)
        return result.overlay, explanation_caption(result), result.metadata()

    def explain_compare(self, image: str | None, keys: Sequence[str], method: str | None,
                        opacity: float | None, progress: gr.Progress, runtime: str | None = None):
        """One overlay per chosen model, titled with model, class, method and milliseconds.
        PyTorch only, like ``explain``: another runtime is refused before any model loads."""
        keys = list(dict.fromkeys(keys or []))
        if not 1 <= len(keys) <= MAX_COMPARE:
            raise gr.Error(f"Choose between 1 and {MAX_COMPARE} models to explain (you chose {len(keys)}).",
                           print_exception=False)
        if image is None:
            raise EmptyImageError("Upload an image first (or pick one of the examples).")
        specs = [self.service.explainable_spec(key, runtime) for key in keys]
        self._announce_load([spec.key for spec in specs], progress)
        progress(0.3, desc=f"Computing {len(keys)} heatmaps…")
        results = self.service.explain_models(image, keys, method, opacity=opacity, runtime=runtime)
        slots = [gr.update(value=r.overlay, label=r.title(), visible=True) for r in results]
        slots += [gr.update(value=None, visible=False)] * (MAX_COMPARE - len(results))
        return (*slots, [r.metadata() for r in results])

    # --- Evaluate tab: accuracy on an uploaded .zip of labelled images (dashboard/evaluate) -----
    def evaluate(self, archive: str | None, keys: Sequence[str], session: str, progress: gr.Progress,
                 runtime: str | None = None):
        """Summary, per-class, confusions, disagreement, gallery, CSV file and a status line; every
        model on ``runtime`` (default pytorch)."""
        if not archive:
            raise gr.Error("Upload a .zip of labelled images first (one folder per class).", print_exception=False)
        keys = list(dict.fromkeys(keys or []))
        if not 1 <= len(keys) <= MAX_COMPARE:
            raise gr.Error(f"Choose between 1 and {MAX_COMPARE} models to evaluate (you chose {len(keys)}).",
                           print_exception=False)
        self._announce_load(keys, progress, runtime)  # an unknown runtime is refused here, before any load
        cancel = self._cancel_events.setdefault(session, threading.Event())
        cancel.clear()

        def report_progress(p) -> None:
            progress(p.fraction, desc=f"Evaluating: {p.describe()}")

        try:
            report = self.service.evaluate(archive, keys, progress=report_progress, cancel=cancel, upload=True,
                                           runtime=runtime)
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


def chart_update(chart):
    """The latency chart's data with the models in the order chosen (gradio sorts x alphabetically
    otherwise); its stage colours are set once, in the tab."""
    return gr.update(value=chart, sort=list(dict.fromkeys(chart["model"])))


def _perturbed_caption(perturbed) -> str:
    params = "".join(f", patch centre {k}={v:g}" for k, v in perturbed.params)
    return f"**{perturbed.description}**{params} · seed {perturbed.seed}"


def explanation_caption(result) -> str:
    """What the overlay shows, in one line."""
    kind = "" if result.class_specific else " (class-agnostic: the same map for every class)"
    return (f"**{result.model_name}** · class **{result.target.label}** (#{result.target.index}, "
            f"{result.target.probability:.1%}) · {result.method_name}{kind} · {result.ms:.0f} ms")


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
