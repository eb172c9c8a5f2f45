"""The ResNet tab: torchvision CNNs (ResNet, ResNeXt, SqueezeNet)."""

from __future__ import annotations

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.models.registry import DEFAULT_TORCHVISION_KEY, list_models
from dashboard.tabs.common import TOP_K, ModelDropdown, TopKSlider, model_outputs


def build_tab(image: gr.Image, handlers: Handlers) -> dict[str, gr.components.Component]:
    """Model dropdown, top-k, Classify button; the Label, model card and stage times."""
    with gr.Row():
        model = ModelDropdown(
            choices=[(s.display_name, s.key) for s in list_models("torchvision")],
            value=DEFAULT_TORCHVISION_KEY, label="Model", elem_id="resnet-model",
        )
        top_k = TopKSlider(**TOP_K, elem_id="resnet-topk")
    button = gr.Button("Classify", variant="primary", elem_id="resnet-run")
    label, card, times = model_outputs("resnet")

    @user_errors
    def classify_resnet(image_path: str | None, key: str, k: float, progress=gr.Progress()):
        return handlers.classify(image_path, key, k, progress)

    button.click(classify_resnet, [image, model, top_k], [label, times, card],
                 api_name="classify_resnet", concurrency_id="models")
    return {"model": model, "top_k": top_k, "button": button, "label": label, "card": card, "times": times}
