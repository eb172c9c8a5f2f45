"""The Compare tab's facts block: reference figures of the ticked models, and their reference
accuracy against the latency measured on this server. Built by one call from the Compare tab."""

from __future__ import annotations

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.models.facts import FACTS_COLUMNS

EXPLANATION = (
    "Figures **quoted from their sources** (torchvision's `weights.meta`; the papers and model cards "
    "named in the source column), never measured here: parameters, GFLOPs per 224×224 image, the "
    "weight file, and the ImageNet-1k validation top-1/top-5 accuracy the authors report. "
    "\"unknown\" means no source gives it for that checkpoint. The plot puts that reference top-1 "
    "against the median latency measured on this server (each model's runs here, any tab).")


def build_block(models: gr.CheckboxGroup, refresh_on: gr.components.Component, handlers: Handlers) -> dict:
    """Facts table, accuracy-against-latency plot and its note, filled when the block is opened,
    when the ticked models change and when ``refresh_on`` (the latency table) changes."""
    with gr.Accordion("Model facts: size, FLOPs, reference accuracy", open=False) as block:
        gr.Markdown(EXPLANATION)
        table = gr.Dataframe(headers=list(FACTS_COLUMNS), label="Reference figures", interactive=False,
                             wrap=True, elem_id="compare-facts")
        scatter = gr.ScatterPlot(x="latency ms", y="top-1 %", color="model",
                                 label="Reference top-1 (%) against latency measured here (ms)",
                                 elem_id="compare-accuracy-latency")
        note = gr.Markdown(elem_id="compare-facts-note")

    @user_errors
    def model_facts(keys: list[str]):
        return handlers.model_facts(keys)

    gr.on([block.expand, models.change, refresh_on.change], model_facts, [models], [table, scatter, note],
          api_name="model_facts")
    return {"facts": table, "scatter": scatter, "facts_note": note}
