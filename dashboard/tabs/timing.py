"""The Compare tab's fair timing panel: one warm-up run, then N timed runs per model, median and
spread per stage. Built by one call from the Compare tab, on its image, models and runtimes."""

from __future__ import annotations

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.tabs.autorun import on_new_image
from dashboard.timing import DEFAULT_RUNS, MIN_RUNS, TIMING_COLUMNS, timing_table

TIMING_HELP = (
    "Each ticked model on each ticked runtime: one warm-up run, then the chosen number of timed runs of "
    "batch 1 on this image (never the result cache, never batched with other requests); per stage and in "
    "total, the **median**, the **IQR** (the spread of the middle half of the runs) and the fastest and "
    "slowest run.")


class RunsSlider(gr.Slider):
    """A gr.Slider whose value reaches the handler unchecked: the core checks the number of runs
    and says the valid range (gr.Slider would answer "abc" with a generic error)."""

    is_template = True  # rendered by the front end's own Slider component

    def preprocess(self, payload):
        return payload


def _cleared():
    """An empty table: the image or the models changed, so the last timing no longer belongs to them."""
    return timing_table([])


def build_timing_panel(image: gr.Image, handlers: Handlers, models: gr.components.Component,
                       runtimes: gr.components.Component) -> dict[str, gr.components.Component]:
    """An accordion (closed) with a runs slider, a button, the timing table and a line of help."""
    maximum = handlers.service.settings.max_timing_runs
    with gr.Accordion("Fair timing", open=False, elem_id="compare-timing"):
        with gr.Row(equal_height=True):
            runs = RunsSlider(minimum=MIN_RUNS, maximum=maximum, step=1, value=min(DEFAULT_RUNS, maximum),
                              label="Timed runs per model (after one warm-up run)",
                              elem_id="compare-timing-runs")
            button = gr.Button("Time the models", elem_id="compare-timing-run")
        table = gr.Dataframe(headers=list(TIMING_COLUMNS), label="Fair timing (ms)", interactive=False,
                             elem_id="compare-timing-table")
        gr.Markdown(TIMING_HELP, elem_id="compare-timing-help")

    @user_errors
    def fair_timing(image_path: str | None, models: list[str], runs: float, runtimes: list[str] | None = None,
                    progress=gr.Progress()):
        return handlers.fair_timing(image_path, models, runs, progress, runtimes)

    button.click(fair_timing, [image, models, runs, runtimes], [table], api_name="fair_timing",
                 concurrency_id="models")
    on_new_image(image, _cleared, [table])
    for changed in (models, runtimes):
        changed.change(_cleared, None, [table], api_visibility="private", queue=False, show_progress="hidden")
    return {"timing_runs": runs, "timing_button": button, "timing": table}
