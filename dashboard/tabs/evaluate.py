"""The Evaluate tab: accuracy of 1-4 models on an uploaded .zip of labelled images."""

from __future__ import annotations

import gradio as gr

from dashboard.evaluate.metrics import CONFUSION_COLUMNS, DISAGREEMENT_COLUMNS, SUMMARY_COLUMNS
from dashboard.handlers import MAX_COMPARE, Handlers, user_errors
from dashboard.models.registry import DEFAULT_COMPARE_KEYS, list_models
from dashboard.tabs.common import runtime_selector

HELP = ("Upload a **.zip** with one folder per class (`cat/1.jpg`, `dog/2.jpg` ...; folder names may be "
        "label names, ImageNet indices like `207` or WordNet ids like `n02099601`), or the images with a "
        "CSV file of `filename,label` rows. Every model runs on every image; the tables give top-1 and "
        "top-5 accuracy with 95% confidence intervals, accuracy per class, the most frequent confusions "
        "and where the models disagree.")


def build_tab(handlers: Handlers) -> dict[str, gr.components.Component]:
    """Upload, model choice, runtime, Run and Cancel; status, tables, gallery and the CSV download."""
    gr.Markdown(HELP)
    with gr.Row():
        archive = gr.File(label="Labelled images (.zip)", file_types=[".zip"], type="filepath",
                          elem_id="evaluate-zip")
        models = gr.CheckboxGroup(
            choices=[(s.display_name, s.key) for s in list_models()], value=[DEFAULT_COMPARE_KEYS[0]],
            label=f"Models (1 to {MAX_COMPARE})", elem_id="evaluate-models",
        )
    runtime = runtime_selector("evaluate")  # every chosen model runs on it; the report names it
    with gr.Row():
        run = gr.Button("Run evaluation", variant="primary", elem_id="evaluate-run")
        cancel = gr.Button("Cancel", variant="stop", elem_id="evaluate-cancel")
    status = gr.Markdown(elem_id="evaluate-status")
    summary = gr.Dataframe(headers=list(SUMMARY_COLUMNS), label="Accuracy and speed", interactive=False,
                           elem_id="evaluate-summary")
    per_class = gr.Dataframe(label="Top-1 accuracy per class (%)", interactive=False, elem_id="evaluate-per-class")
    with gr.Row():
        confusions = gr.Dataframe(headers=list(CONFUSION_COLUMNS), label="Most frequent confusions",
                                  interactive=False, elem_id="evaluate-confusions")
        disagreement = gr.Dataframe(headers=list(DISAGREEMENT_COLUMNS), label="Disagreement (top-1, pairwise)",
                                    interactive=False, elem_id="evaluate-disagreement")
    gallery = gr.Gallery(label="Misclassified images (true class, each model's top-1)", columns=6, height="auto",
                         elem_id="evaluate-gallery")
    download = gr.DownloadButton("Download CSV (one row per image and model)", elem_id="evaluate-csv")

    @user_errors
    def evaluate(archive_path: str | None, keys: list[str], runtime: str | None, request: gr.Request,
                 progress=gr.Progress()):
        return handlers.evaluate(archive_path, keys, request.session_hash or "", progress, runtime)

    def cancel_evaluation(request: gr.Request) -> None:
        handlers.cancel_evaluation(request.session_hash or "")

    run.click(evaluate, [archive, models, runtime],
              [status, summary, per_class, confusions, disagreement, gallery, download],
              api_name="evaluate", concurrency_id="models")
    # outside the models' queue, so that it is not waiting behind the run it stops
    cancel.click(cancel_evaluation, None, None, api_name="cancel_evaluation", concurrency_limit=None)
    return {"archive": archive, "models": models, "runtime": runtime, "run": run, "cancel": cancel, "status": status,
            "summary": summary, "per_class": per_class, "confusions": confusions,
            "disagreement": disagreement, "gallery": gallery, "download": download}
