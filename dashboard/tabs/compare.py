"""The Compare tab: 2-4 models on the shared image, side by side."""

from __future__ import annotations

import gradio as gr

from dashboard.compare import AGREEMENT_COLUMNS, LATENCY_COLUMNS
from dashboard.handlers import MAX_COMPARE, Handlers, user_errors
from dashboard.models.registry import DEFAULT_COMPARE_KEYS, list_models
from dashboard.tabs.common import TOP_K, ModelChoices, TopKSlider


def build_tab(image: gr.Image, handlers: Handlers) -> dict[str, gr.components.Component]:
    """Model choice, Labels side by side, latency and agreement tables, a chart and a CSV."""
    with gr.Row():
        models = ModelChoices(
            choices=[(s.display_name, s.key) for s in list_models()], value=list(DEFAULT_COMPARE_KEYS),
            label=f"Models (2 to {MAX_COMPARE})", elem_id="compare-models",
        )
        top_k = TopKSlider(**TOP_K, elem_id="compare-topk")
    button = gr.Button("Compare", variant="primary", elem_id="compare-run")
    with gr.Row():
        labels = [gr.Label(num_top_classes=10, visible=i < 2, elem_id=f"compare-label-{i}")
                  for i in range(MAX_COMPARE)]
    latency = gr.Dataframe(headers=list(LATENCY_COLUMNS), label="Latency", interactive=False,
                           elem_id="compare-latency")
    agreement = gr.Dataframe(headers=list(AGREEMENT_COLUMNS), label="Agreement (pairwise)",
                             interactive=False, elem_id="compare-agreement")
    chart = gr.BarPlot(x="model", y="ms", color="stage", label="Latency per model (ms, stacked by stage)",
                       elem_id="compare-chart")
    download = gr.DownloadButton("Download CSV", elem_id="compare-csv")

    @user_errors
    def compare(image_path: str | None, keys: list[str], k: float, progress=gr.Progress()):
        return handlers.compare(image_path, keys, k, progress)

    button.click(compare, [image, models, top_k], [*labels, latency, agreement, chart, download],
                 api_name="compare", concurrency_id="models")
    return {"models": models, "top_k": top_k, "button": button, "labels": labels, "latency": latency,
            "agreement": agreement, "chart": chart, "download": download}
