"""The Compare tab: 2-4 models on the shared image, side by side."""

from __future__ import annotations

import gradio as gr

from dashboard.compare import AGREEMENT_COLUMNS, LATENCY_COLUMNS
from dashboard.handlers import MAX_COMPARE, Handlers, user_errors
from dashboard.models.registry import DEFAULT_COMPARE_KEYS, list_models
from dashboard.palette import STAGE_COLOURS
from dashboard.tabs import facts as facts_block
from dashboard.tabs.autorun import AutoRun
from dashboard.tabs.common import ModelChoices, runtime_selector
from dashboard.tabs.explain import build_compare_explain_panel
from dashboard.tabs.timing import build_timing_panel


LATENCY_HELP = (
    "**Stages:** *preprocess* is the model's own resize, crop and normalisation of the photo; *forward* "
    "is the network itself (the part a faster runtime or a GPU speeds up); *postprocess* is the softmax "
    "and the top-k. *load* says whether the model was loaded for this request or already cached. "
    "*measured* says when the times were taken: *now*, or *earlier (cached answer)* when the same image and "
    "model were answered from the result cache, whose times are the first request's (the CSV has the same "
    "column; the chart names such a model \"NAME (cached)\"). For times you can compare, use **Fair timing** "
    "below.")
AGREEMENT_HELP = (
    "**Top-1 agree:** both models give the same first class. **Top-k overlap:** the share of the k "
    "classes shown that are in both lists (1: all k in common; 2 of 3 shows as 0.667). **JS divergence:** the Jensen-Shannon "
    "divergence of the two full probability distributions, in bits: 0 means identical, 1 means the "
    "models put their probability on completely different classes; empty when their label sets differ.")


# Ticking a fifth model unticks it again, in the page (no round trip); the hidden "models" group
# holds the ticked models of both groups in the order they were ticked, which every view follows.
LIMIT_JS = """(cnn, vit, order) => {
  const ticked = [...(cnn || []), ...(vit || [])];
  let next = (order || []).filter((k) => ticked.includes(k));
  for (const k of ticked) if (!next.includes(k)) next.push(k);
  next = next.slice(0, %d);
  return [(cnn || []).filter((k) => next.includes(k)), (vit || []).filter((k) => next.includes(k)), next];
}""" % MAX_COMPARE


def _groups_seen(cnn: list[str], vit: list[str]) -> None:
    """Nothing to do: the call itself lets the server see the two groups' values."""


def _group(backend: str, label: str, elem_id: str) -> gr.CheckboxGroup:
    specs = list_models(backend)
    return gr.CheckboxGroup(choices=[(s.display_name, s.key) for s in specs],
                            value=[k for k in DEFAULT_COMPARE_KEYS if k in {s.key for s in specs}],
                            label=label, elem_id=elem_id, elem_classes=["model-group"])


def build_tab(image: gr.Image, handlers: Handlers, auto: AutoRun) -> dict[str, gr.components.Component]:
    """Model choice (CNNs and Transformers, 2 to 4 in all), runtimes, Labels side by side, latency and
    agreement tables, a chart and a CSV. The top-k is the page's shared slider."""
    gr.Markdown(f"**Models: 2 to {MAX_COMPARE}** from both groups (a fifth tick is refused; untick one first).",
                elem_id="compare-models-help")
    with gr.Row(equal_height=False):
        cnn = _group("torchvision", "CNNs (torchvision)", "compare-models-cnn")
        vit = _group("transformers", "Transformers", "compare-models-vit")
    # what /compare receives: the ticked models of both groups, in ticking order
    models = ModelChoices(choices=[(s.display_name, s.key) for s in list_models()], value=list(DEFAULT_COMPARE_KEYS),
                          label=f"Models (2 to {MAX_COMPARE})", visible="hidden", elem_id="compare-models")
    for group in (cnn, vit):
        # the server sees what the groups show (a share link restores the values it last saw)
        (group.input(None, [cnn, vit, models], [cnn, vit, models], js=LIMIT_JS, queue=False)
         .then(_groups_seen, [cnn, vit], None, api_visibility="private", queue=False, show_progress="hidden"))
    # each chosen model runs on each chosen runtime: "ResNet-18" and "ResNet-18 · ONNX Runtime int8"
    runtimes = runtime_selector("compare", multiple=True)
    button = gr.Button("Compare", variant="primary", elem_id="compare-run")
    with gr.Row():
        labels = [gr.Label(num_top_classes=10, visible=i < 2, elem_id=f"compare-label-{i}")
                  for i in range(MAX_COMPARE)]
    latency = gr.Dataframe(headers=list(LATENCY_COLUMNS), label="Latency", interactive=False,
                           elem_id="compare-latency")
    gr.Markdown(LATENCY_HELP, elem_id="compare-latency-help")
    agreement = gr.Dataframe(headers=list(AGREEMENT_COLUMNS), label="Agreement (pairwise)",
                             interactive=False, elem_id="compare-agreement")
    gr.Markdown(AGREEMENT_HELP, elem_id="compare-agreement-help")
    chart = gr.BarPlot(x="model", y="ms", color="stage", label="Latency per model (ms, stacked by stage)",
                       color_map=dict(STAGE_COLOURS), x_label_angle=-30, elem_id="compare-chart")
    # nothing to download before a comparison; each run enables it with its own file
    download = gr.DownloadButton("Download CSV", interactive=False, elem_id="compare-csv")
    explain = build_compare_explain_panel(image, handlers, models)
    build_timing_panel(image, handlers, models, runtimes)  # fair timing: warm-up, N runs, median and spread

    @user_errors
    def compare(image_path: str | None, keys: list[str], k: float, runtimes: list[str] | None = None,
                progress=gr.Progress()):
        return handlers.compare(image_path, keys, k, progress, runtimes)

    @user_errors
    def check_compare(image_path: str | None, keys: list[str], k: float, runtimes: list[str] | None = None):
        handlers.check_compare(image_path, keys, runtimes)

    def cleared_compare(image_path: str | None, keys: list[str], k: float, runtimes: list[str] | None = None):
        return handlers.cleared_compare(keys, runtimes)

    def ready(image_path: str | None, keys: list[str], k: float, runtimes: list[str] | None = None) -> bool:
        try:
            handlers.check_compare(image_path, keys, runtimes)
        except gr.Error:  # mid-choice (one model ticked): auto-run waits, without a toast
            return False
        return True

    run = dict(run=compare, clear=cleared_compare, inputs=[image, models, auto.top_k, runtimes],
               outputs=[*labels, latency, agreement, chart, download])
    auto.wire_button(button, check=check_compare, **run, api_name="compare", tab="compare")
    auto.wire_tab("compare", **run, triggers=[models, runtimes], ready=ready)
    facts = facts_block.build_block(models, latency, handlers)  # reference figures + accuracy/latency plot
    return {**facts, "models": models, "model_groups": [cnn, vit], "top_k": auto.top_k, "runtimes": runtimes,
            "button": button, "labels": labels, "latency": latency, "agreement": agreement, "chart": chart,
            "download": download, "explain": explain}
