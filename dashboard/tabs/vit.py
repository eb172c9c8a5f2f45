"""The ViT tab: transformers presets, or any Hub image-classification model id."""

from __future__ import annotations

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.models.registry import DEFAULT_TRANSFORMERS_KEY, list_models
from dashboard.tabs.common import TOP_K, ModelDropdown, TopKSlider, model_outputs, runtime_selector
from dashboard.tabs.explain import build_explain_panel
from dashboard.tabs.model_view import build_model_view


def build_tab(image: gr.Image, handlers: Handlers, allow_custom: bool) -> dict[str, gr.components.Component]:
    """Preset dropdown, optional free-form Hub id, top-k; the same outputs as the ResNet tab."""
    with gr.Row():
        preset = ModelDropdown(
            choices=[(f"{s.display_name} ({s.key})", s.key) for s in list_models("transformers")],
            value=DEFAULT_TRANSFORMERS_KEY, label="Preset", elem_id="vit-model",
        )
        custom = gr.Textbox(
            label="Or any Hub model id (image classification)", placeholder="e.g. microsoft/resnet-50", value="",
            visible=allow_custom, max_length=200, elem_id="vit-custom",
        )
        top_k = TopKSlider(**TOP_K, elem_id="vit-topk")
        runtime = runtime_selector("vit")
    button = gr.Button("Classify", variant="primary", elem_id="vit-run")
    label, card, times = model_outputs("vit")
    view = build_model_view(image, handlers, [preset, custom], runtime, "vit")
    explain = build_explain_panel(image, handlers, [preset, custom], label, "vit", "transformer")

    @user_errors
    def classify_vit(image_path: str | None, preset_key: str, custom_id: str, k: float,
                     runtime: str = "pytorch", progress=gr.Progress()):
        key = (custom_id or "").strip() or preset_key
        return handlers.classify(image_path, key, k, progress, runtime)

    button.click(classify_vit, [image, preset, custom, top_k, runtime], [label, times, card],
                 api_name="classify_vit", concurrency_id="models")
    custom.submit(classify_vit, [image, preset, custom, top_k, runtime], [label, times, card],
                  api_visibility="private", concurrency_id="models")
    return {"model": preset, "custom": custom, "top_k": top_k, "runtime": runtime, "button": button,
            "label": label, "card": card, "times": times, "explain": explain, **view}
