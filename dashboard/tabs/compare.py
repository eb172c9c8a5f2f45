"""The Compare tab: 2-4 models on the shared image, side by side."""

from __future__ import annotations

import gradio as gr

from dashboard.compare import AGREEMENT_COLUMNS, LATENCY_COLUMNS
from dashboard.handlers import MAX_COMPARE, Handlers, user_errors
from dashboard.models.registry import DEFAULT_COMPARE_KEYS, list_models
from dashboard.tabs import facts as facts_block
from dashboard.tabs.common import TOP_K, ModelChoices, TopKSlider, runtime_selector
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


def build_tab(image: gr.Image, handlers: Handlers) -> dict[str, gr.components.Component]:
    """Model choice, Labels side by side, latency and agreement tables, a chart and a CSV."""
    with gr.Row():
        models = ModelChoices(
            choices=[(s.display_name, s.key) for s in list_models()], value=list(DEFAULT_COMPARE_KEYS),
            label=f"Models (2 to {MAX_COMPARE})", elem_id="compare-models",
        )
        top_k = TopKSlider(**TOP_K, elem_id="compare-topk")
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
                       elem_id="compare-chart")
    download = gr.DownloadButton("Download CSV", elem_id="compare-csv")
    explain = build_compare_explain_panel(image, handlers, models)
    build_timing_panel(image, handlers, models, runtimes)  # fair timing: warm-up, N runs, median and spread

    @user_errors
    def compare(image_path: str | None, keys: list[str], k: float, runtimes: list[str] | None = None,
                progress=gr.Progress()):
        return handlers.compare(image_path, keys, k, progress, runtimes)

    button.click(compare, [image, models, top_k, runtimes], [*labels, latency, agreement, chart, download],
                 api_name="compare", concurrency_id="models")
    facts = facts_block.build_block(models, latency, handlers)  # reference figures + accuracy/latency plot
    return {**facts, "models": models, "top_k": top_k, "runtimes": runtimes, "button": button, "labels": labels,
            "latency": latency, "agreement": agreement, "chart": chart, "download": download, "explain": explain}
