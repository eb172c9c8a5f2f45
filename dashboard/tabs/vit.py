"""The ViT tab: transformers presets, or any Hub image-classification model id."""

from __future__ import annotations

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.models.registry import DEFAULT_TRANSFORMERS_KEY, list_models
from dashboard.tabs.autorun import AutoRun
from dashboard.tabs.common import (ModelDropdown, check_image_given, cleared_model_outputs, model_outputs,
                                   runtime_selector)
from dashboard.tabs.explain import build_explain_panel
from dashboard.tabs.model_view import build_model_view


def build_tab(image: gr.Image, handlers: Handlers, allow_custom: bool,
              auto: AutoRun) -> dict[str, gr.components.Component]:
    """Preset dropdown, optional free-form Hub id, runtime; the same outputs as the ResNet tab."""
    with gr.Row():
        preset = ModelDropdown(
            choices=[(f"{s.display_name} ({s.key})", s.key) for s in list_models("transformers")],
            value=DEFAULT_TRANSFORMERS_KEY, label="Preset", elem_id="vit-model",
        )
        custom = gr.Textbox(
            label="Or any Hub model id (image classification)", placeholder="e.g. microsoft/resnet-50", value="",
            visible=allow_custom, max_length=200, elem_id="vit-custom",
        )
        runtime = runtime_selector("vit")
    button = gr.Button("Classify", variant="primary", elem_id="vit-run")
    label, card, times = model_outputs("vit")
    view = build_model_view(image, handlers, [preset, custom], runtime, "vit")
    explain = build_explain_panel(image, handlers, [preset, custom], label, "vit", "transformer")

    @user_errors
    def classify_vit(image_path: str | None, preset_key: str, custom_id: str = "", k: float = 3,
                     runtime: str = "pytorch", progress=gr.Progress()):
        key = (custom_id or "").strip() or preset_key
        return handlers.classify(image_path, key, k, progress, runtime)

    run = dict(run=classify_vit, clear=cleared_model_outputs, inputs=[image, preset, custom, auto.top_k, runtime],
               outputs=[label, times, card])
    auto.wire_button(button, check=check_image_given, **run, api_name="classify_vit", tab="vit")
    # a free-form id runs when submitted (Enter), not on every keystroke
    (custom.submit(check_image_given, run["inputs"], None, api_visibility="private", queue=False)
     .success(cleared_model_outputs, None, run["outputs"], api_visibility="private", queue=False)
     .success(classify_vit, run["inputs"], run["outputs"], api_visibility="private", concurrency_id="models"))
    auto.wire_tab("vit", **run, triggers=[preset, runtime])
    return {"model": preset, "custom": custom, "top_k": auto.top_k, "runtime": runtime, "button": button,
            "label": label, "card": card, "times": times, "explain": explain, **view}
