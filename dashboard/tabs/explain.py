"""The Explain panels ("why this class?"): heatmap controls and overlays, built and wired only.

``build_explain_panel`` goes under a tab's Label (ResNet, ViT), ``build_compare_explain_panel``
under Compare's Labels, ``build_explain_api`` adds the API-only ``/explain`` endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr

from dashboard.explain.record import AUTO, DEFAULT_OPACITY, FAMILY_METHODS, METHODS
from dashboard.handlers import MAX_COMPARE, Handlers, user_errors
from dashboard.models.registry import DEFAULT_TORCHVISION_KEY
from dashboard.tabs.autorun import on_new_image

TOP_1 = ("Top-1 (the prediction)", "")
# OpenCV's COLORMAP_JET, which grad-cam's show_cam_on_image draws with
JET = "#00007f, #0000ff, #007fff, #00ffff, #7fff7f, #ffff00, #ff7f00, #ff0000, #7f0000"
LEGEND = f"""<div class="explain-legend">
<div style="display:flex;align-items:center;gap:.5em;font-size:.85em">
<span>low</span><div style="flex:1;height:12px;border-radius:3px;background:linear-gradient(to right, {JET})"></div>
<span>high</span></div>
<div style="font-size:.8em;opacity:.8;margin-top:.3em">Red: where the model looked most for the class.
Darkened border: the part of the photo its preprocessing cropped away (never seen).</div></div>"""


def _method_choices(family: str | None) -> list[tuple[str, str]]:
    names = FAMILY_METHODS[family] if family else tuple(METHODS)
    return [("Default for the model", AUTO)] + [(METHODS[m][0], m) for m in names]


def classes_from_label(value) -> dict:
    """The class choices offered after a classification: top-1 first, then the shown top-k."""
    names = list(value) if isinstance(value, dict) else []
    return gr.update(choices=[TOP_1] + [(name, name) for name in names], value="")


def _no_heatmap() -> tuple[None, str]:
    return None, ""


def _no_heatmaps() -> tuple:
    return tuple(gr.update(value=None) for _ in range(MAX_COMPARE))


def build_explain_panel(image: gr.Image, handlers: Handlers, model_inputs: Sequence[gr.components.Component],
                        label: gr.Label, prefix: str, family: str) -> dict[str, gr.components.Component]:
    """Method, class (top-1 or one of the shown top-k, or any label/index typed), opacity and an
    Explain button; the overlay with its colour legend and caption. ``model_inputs``: the tab's
    model choosers (a later non-empty one wins, like the ViT tab's free-form id)."""
    with gr.Accordion("Why this class? Heatmap", open=True, elem_id=f"{prefix}-explain"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240):
                method = gr.Dropdown(choices=_method_choices(family), value=AUTO, label="Method",
                                     elem_id=f"{prefix}-explain-method")
                target = gr.Dropdown(choices=[TOP_1], value="", label="Class", allow_custom_value=True,
                                     info="The top-1, one of the top-k shown, or any label or index",
                                     elem_id=f"{prefix}-explain-class")
                opacity = gr.Slider(0, 1, value=DEFAULT_OPACITY, step=0.05, label="Heatmap opacity",
                                    elem_id=f"{prefix}-explain-opacity")
                button = gr.Button("Explain", elem_id=f"{prefix}-explain-run")
            with gr.Column(scale=2):
                overlay = gr.Image(label="Heatmap on the photo", type="pil", interactive=False,
                                   format="png", height=360, elem_id=f"{prefix}-explain-overlay")
                gr.HTML(LEGEND)
                caption = gr.Markdown(elem_id=f"{prefix}-explain-caption")
    label.change(classes_from_label, label, target, api_visibility="private", show_progress="hidden")

    @user_errors
    def explain(image_path: str | None, *args, progress=gr.Progress()):
        *keys, class_choice, method_name, alpha = args
        key = next((k.strip() for k in reversed(keys) if isinstance(k, str) and k.strip()), "")
        out, text, _ = handlers.explain(image_path, key, class_choice, method_name, alpha, progress)
        return out, text

    button.click(explain, [image, *model_inputs, target, method, opacity], [overlay, caption],
                 api_name=f"{prefix}_explain", api_visibility="private", concurrency_id="models")
    # a new image or model: the heatmap no longer belongs to the inputs
    on_new_image(image, _no_heatmap, [overlay, caption])
    gr.on([c.change for c in model_inputs], _no_heatmap, None, [overlay, caption],
          api_visibility="private", queue=False, show_progress="hidden")
    return {"method": method, "class": target, "opacity": opacity, "button": button,
            "overlay": overlay, "caption": caption}


def build_compare_explain_panel(image: gr.Image, handlers: Handlers,
                                models: gr.CheckboxGroup) -> dict[str, gr.components.Component]:
    """One overlay per chosen model in a row, each titled with model, class, method and ms."""
    with gr.Accordion("Where does each model look? Heatmaps", open=True, elem_id="compare-explain"):
        with gr.Row():
            method = gr.Dropdown(choices=_method_choices(None), value=AUTO, label="Method",
                                 info="Default: Grad-CAM for CNNs, attention rollout for ViTs",
                                 elem_id="compare-explain-method")
            opacity = gr.Slider(0, 1, value=DEFAULT_OPACITY, step=0.05, label="Heatmap opacity",
                                elem_id="compare-explain-opacity")
        button = gr.Button("Show heatmaps", elem_id="compare-explain-run")
        with gr.Row():
            overlays = [gr.Image(type="pil", interactive=False, format="png", visible=i < 2, height=260,
                                 label=f"Heatmap {i + 1}", elem_id=f"compare-explain-{i}")
                        for i in range(MAX_COMPARE)]
        gr.HTML(LEGEND)
        gr.Markdown("Heatmaps are computed with PyTorch (the same weights as every runtime above).",
                    elem_id="compare-explain-runtime-note")
        details = gr.JSON(visible=False)
        # the API's last parameter (default pytorch); the page always sends pytorch
        runtime = gr.Textbox(value="pytorch", label="runtime", visible=False)

    @user_errors
    def compare_explain(image_path: str | None, keys: list[str], method_name: str, alpha: float,
                        runtime: str = "pytorch", progress=gr.Progress()):
        return handlers.explain_compare(image_path, keys, method_name, alpha, progress, runtime)

    button.click(compare_explain, [image, models, method, opacity, runtime], [*overlays, details],
                 api_name="compare_explain", concurrency_id="models")
    on_new_image(image, _no_heatmaps, overlays)
    models.change(_no_heatmaps, None, overlays, api_visibility="private", queue=False,
                  show_progress="hidden")  # heatmaps of an older image or model choice are never left on show
    return {"method": method, "opacity": opacity, "button": button, "overlays": overlays}


def build_explain_api(image: gr.Image, handlers: Handlers) -> None:
    """``/explain``: (image, model, class, method, opacity) -> (overlay, metadata). Every
    parameter but the image has a default; all are checked by the core, not by these fields."""
    with gr.Group(visible=False):
        model = gr.Textbox(value=DEFAULT_TORCHVISION_KEY, label="model")
        target = gr.Textbox(value="", label="class")
        method = gr.Textbox(value=AUTO, label="method")
        opacity = gr.Number(value=DEFAULT_OPACITY, label="opacity")
        runtime = gr.Textbox(value="pytorch", label="runtime")  # only pytorch explains; others: the reason
        overlay = gr.Image(type="pil", format="png", label="overlay")
        metadata = gr.JSON(label="metadata")
        trigger = gr.Button("explain")

    @user_errors
    def explain(image_path: str | None, key: str, class_choice: str, method_name: str, alpha: float,
                runtime: str = "pytorch", progress=gr.Progress()):
        out, _, meta = handlers.explain(image_path, key, class_choice, method_name, alpha, progress, runtime)
        return out, meta

    trigger.click(explain, [image, model, target, method, opacity, runtime], [overlay, metadata],
                  api_name="explain", api_visibility="public", concurrency_id="models")  # public though hidden
