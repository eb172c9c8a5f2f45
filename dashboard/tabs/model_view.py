""""What the model sees": a model's own resized, centre-cropped input, shown on request."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.tabs.autorun import on_new_image


def _cleared() -> tuple[None, str]:
    """No view and no caption: the inputs changed, so the last view no longer belongs to them."""
    return None, ""


def build_model_view(image: gr.Image, handlers: Handlers, model_inputs: Sequence[gr.components.Component],
                     runtime: gr.components.Component, prefix: str) -> dict[str, gr.components.Component]:
    """An accordion (closed) that, when opened or asked, shows the tab's model's input image.
    ``model_inputs``: the tab's model choosers (a later non-empty one wins, like the ViT tab's
    free-form id). A new image or model clears it, so it never shows another input's view."""
    with gr.Accordion("What the model sees", open=False, elem_id=f"{prefix}-view") as block:
        with gr.Row(equal_height=False):
            view = gr.Image(label="Model input", type="pil", format="png", interactive=False, height=240,
                            buttons=["download", "fullscreen"], elem_id=f"{prefix}-view-image")
            caption = gr.Markdown(elem_id=f"{prefix}-view-caption")
        button = gr.Button("Show what the model sees", size="sm", elem_id=f"{prefix}-view-run")

    @user_errors
    def model_view(image_path: str | None, *args):
        *keys, runtime_choice = args
        key = next((k.strip() for k in reversed(keys) if isinstance(k, str) and k.strip()), "")
        return handlers.model_view(image_path, key, runtime_choice)

    show = dict(fn=model_view, inputs=[image, *model_inputs, runtime], outputs=[view, caption],
                api_visibility="private", concurrency_id="models")
    button.click(**show)
    block.expand(**show)
    on_new_image(image, _cleared, [view, caption])
    for changed in (*model_inputs, runtime):
        changed.change(_cleared, None, [view, caption], api_visibility="private", queue=False,
                       show_progress="hidden")
    return {"view": view, "view_caption": caption, "view_button": button}
