"""The Robustness tab: one perturbation, a strength slider with a live preview, each model's
answer on the perturbed image, and a sweep over strengths (chart, table, gallery)."""

from __future__ import annotations

import gradio as gr

from dashboard.handlers import Handlers, user_errors
from dashboard.models.registry import DEFAULT_COMPARE_KEYS, list_models
from dashboard.perturb import DEFAULT_SEED, DEFAULT_STEPS, MAX_MODELS, PERTURBATIONS, check_models
from dashboard.robustness import CHANGE_COLUMNS
from dashboard.errors import EmptyImageError
from dashboard.tabs.autorun import AutoRun
from dashboard.tabs.common import runtime_selector

INTRO = ("Perturb the image and watch each model's answer. The perturbations are named after the "
         "corruptions of **ImageNet-C** (Hendrycks & Dietterich, 2019); the strength (0 = the clean image, "
         "1 = the strongest) maps to the parameter shown under the preview. A **sweep** runs 0 to 1 in equal "
         "steps and plots how likely each model still finds its clean answer.")


def clear_answers(*inputs: object) -> tuple:
    """The preview, caption, Labels (keeping their slots and visibility) and summary, emptied."""
    return (None, "", *[gr.update(value=None)] * MAX_MODELS, "")


def clear_sweep(*inputs: object) -> tuple:
    """The sweep's chart, table and gallery, emptied."""
    return None, None, []


def clear_outputs(*inputs: object) -> tuple:
    """Empty values for every output of the tab."""
    return (*clear_answers(), *clear_sweep())


@user_errors
def check_request(image_path: str | None, models: list[str] | None, *rest: object) -> None:
    """Refused before anything is cleared: no image, or not 1 to 4 models."""
    check_models(models)
    if image_path is None:
        raise EmptyImageError("Upload an image first (or pick one of the examples).")


def _ready(image_path: str | None, models: list[str] | None, *rest: object) -> bool:
    return image_path is not None and 1 <= len(models or []) <= MAX_MODELS


def build_tab(image: gr.Image, handlers: Handlers, max_steps: int, auto: AutoRun) -> dict[str, gr.components.Component]:
    """Perturbation controls, the preview and Labels; the sweep's chart, table and gallery."""
    gr.Markdown(INTRO)
    with gr.Row():
        perturbation = gr.Dropdown(
            choices=[(f"{p.title} · {p.parameter}", p.name) for p in PERTURBATIONS.values()],
            value="gaussian_blur", label="Perturbation", elem_id="robust-perturbation")
        strength = gr.Slider(0, 1, value=0.3, step=0.01, label="Strength (0 = clean, 1 = strongest)",
                             elem_id="robust-strength")
        seed = gr.Number(value=DEFAULT_SEED, precision=0, minimum=0, label="Seed (noise)", elem_id="robust-seed")
    with gr.Accordion("Occlusion patch: centre position", open=False):
        with gr.Row():
            x = gr.Slider(0, 1, value=0.5, step=0.01, label="x (fraction of the width)", elem_id="robust-x")
            y = gr.Slider(0, 1, value=0.5, step=0.01, label="y (fraction of the height)", elem_id="robust-y")
    models = gr.CheckboxGroup(
        choices=[(s.display_name, s.key) for s in list_models()], value=list(DEFAULT_COMPARE_KEYS),
        label=f"Models (1 to {MAX_MODELS})", elem_id="robust-models")
    top_k = auto.top_k  # the page's shared top-k
    runtime = runtime_selector("robust")  # every chosen model runs on this runtime
    button = gr.Button("Classify the perturbed image", variant="primary", elem_id="robust-run")
    with gr.Row():
        with gr.Column():
            preview = gr.Image(label="Perturbed image", type="pil", format="png", interactive=False,
                               height=320, elem_id="robust-preview")
            caption = gr.Markdown(elem_id="robust-caption")
        with gr.Column():
            summary = gr.Markdown(elem_id="robust-summary")
            labels = [gr.Label(num_top_classes=10, visible=i < len(DEFAULT_COMPARE_KEYS),
                               elem_id=f"robust-label-{i}") for i in range(MAX_MODELS)]
    with gr.Row():
        steps = gr.Slider(2, max_steps, value=DEFAULT_STEPS, step=1, label="Sweep: strengths from 0 to 1",
                          elem_id="robust-steps")
        sweep_button = gr.Button("Sweep", variant="primary", elem_id="robust-sweep")
    curve = gr.LinePlot(x="strength", y="probability", color="model", x_lim=[0, 1],
                        label="Probability of the clean image's top-1 class", elem_id="robust-chart")
    changes = gr.Dataframe(headers=list(CHANGE_COLUMNS), label="Where each model's answer first changes",
                           interactive=False, elem_id="robust-changes")
    gallery = gr.Gallery(label="Perturbed images", columns=4, height="auto", format="png",
                         elem_id="robust-gallery")

    # The parameter names are the API's (gradio_client's view_api shows them).
    @user_errors
    def perturb_preview(image_path, perturbation, strength, seed, patch_x, patch_y):
        return handlers.perturb_preview(image_path, perturbation, strength, seed, patch_x, patch_y)

    @user_errors
    def robustness(image_path, models, perturbation, strength, seed, patch_x, patch_y, top_k,
                   runtime="pytorch", progress=gr.Progress()):
        return handlers.robustness(image_path, models, perturbation, strength, seed, patch_x, patch_y, top_k,
                                   progress, runtime)

    @user_errors
    def sweep(image_path, models, perturbation, steps, seed, patch_x, patch_y, runtime="pytorch",
              progress=gr.Progress()):
        return handlers.sweep(image_path, models, perturbation, steps, seed, patch_x, patch_y, progress, runtime)

    knobs = [perturbation, strength, seed, x, y]
    # While the slider moves: the preview alone (cheap, the latest position wins); on release: the models.
    strength.input(perturb_preview, [image, *knobs], [preview, caption], api_name="perturb",
                   trigger_mode="always_last", show_progress="hidden", concurrency_id="preview")
    def rerun(*values):
        """Auto-run: the answers on the new inputs; the sweep (not rerun) is cleared."""
        return (*robustness(*values), *clear_sweep())

    answer_inputs = [image, models, *knobs, top_k, runtime]
    answer_outputs = [preview, caption, *labels, summary]
    sweep_outputs = [curve, changes, gallery]
    answer = dict(fn=robustness, inputs=answer_inputs, outputs=answer_outputs, concurrency_id="models")
    auto.wire_button(button, check=check_request, clear=clear_answers, run=robustness, inputs=answer_inputs,
                     outputs=answer_outputs, api_name="robustness", tab="robustness")
    for event in (strength.release, perturbation.input, seed.submit, x.release, y.release):
        event(**answer, api_visibility="private", trigger_mode="always_last")
    auto.wire_button(sweep_button, check=check_request, clear=clear_sweep, run=sweep,
                     inputs=[image, models, perturbation, steps, seed, x, y, runtime], outputs=sweep_outputs,
                     api_name="sweep", tab="robustness-sweep")
    # A new image, model choice, runtime or top-k: rerun the answers (auto-run, this tab shown) or clear them.
    auto.wire_tab("robustness", run=rerun, clear=clear_outputs, inputs=answer_inputs,
                  outputs=[*answer_outputs, *sweep_outputs], triggers=[models, runtime], ready=_ready)
    return {"perturbation": perturbation, "strength": strength, "seed": seed, "x": x, "y": y,
            "models": models, "top_k": top_k, "runtime": runtime, "button": button, "preview": preview, "caption": caption, "summary": summary,
            "labels": labels, "steps": steps, "sweep": sweep_button, "chart": curve, "changes": changes,
            "gallery": gallery}
