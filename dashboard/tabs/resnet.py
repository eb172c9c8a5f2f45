"""The ResNet tab: torchvision CNNs (ResNet, ResNeXt, SqueezeNet)."""

from __future__ import annotations

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.models.registry import DEFAULT_TORCHVISION_KEY, list_models
from dashboard.tabs.autorun import AutoRun
from dashboard.tabs.common import (ModelDropdown, check_image_given, cleared_model_outputs, model_outputs,
                                   runtime_selector)
from dashboard.tabs.explain import build_explain_panel
from dashboard.tabs.model_view import build_model_view


def build_tab(image: gr.Image, handlers: Handlers, auto: AutoRun) -> dict[str, gr.components.Component]:
    """Model dropdown and runtime, Classify button; the Label, model card and stage times.
    The top-k is the page's shared slider (``auto.top_k``)."""
    with gr.Row():
        model = ModelDropdown(
            choices=[(s.display_name, s.key) for s in list_models("torchvision")],
            value=DEFAULT_TORCHVISION_KEY, label="Model", elem_id="resnet-model",
        )
        runtime = runtime_selector("resnet")
    button = gr.Button("Classify", variant="primary", elem_id="resnet-run")
    label, card, times = model_outputs("resnet")
    view = build_model_view(image, handlers, [model], runtime, "resnet")
    explain = build_explain_panel(image, handlers, [model], label, "resnet", "cnn")

    @user_errors
    def classify_resnet(image_path: str | None, key: str, k: float, runtime: str = "pytorch",
                        progress=gr.Progress()):
        return handlers.classify(image_path, key, k, progress, runtime)

    run = dict(run=classify_resnet, clear=cleared_model_outputs, inputs=[image, model, auto.top_k, runtime],
               outputs=[label, times, card])
    auto.wire_button(button, check=check_image_given, **run, api_name="classify_resnet", tab="resnet")
    auto.wire_tab("resnet", **run, triggers=[model, runtime])
    return {"model": model, "top_k": auto.top_k, "runtime": runtime, "button": button, "label": label,
            "card": card, "times": times, "explain": explain, **view}
