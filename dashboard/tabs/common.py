"""Pieces shared by the tabs: the raw image input and the per-model output block."""

from __future__ import annotations

import base64
import binascii
import os
import tempfile

import gradio as gr
from gradio.data_classes import ImageData

from dashboard.compare import LATENCY_COLUMNS


class RawImage(gr.Image):
    """A gr.Image whose handler receives the uploaded file untouched.

    gr.Image's own preprocessing opens every upload with all of Pillow's plugins; our core
    (dashboard.images) must be the first and only code that parses user bytes, so that refusals
    are specific and decompression bombs are never decoded.
    """

    is_template = True  # rendered by the front end's own Image component

    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):  # base64 from an API client
            try:
                data = base64.b64decode(payload.url.split(",", 1)[1], validate=False)
            except (IndexError, binascii.Error):
                raise gr.Error("The image data sent could not be read.", print_exception=False) from None
            fd, path = tempfile.mkstemp(dir=self.GRADIO_CACHE, suffix=".upload")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.temp_files.add(path)
            return path
        return payload.path


def model_outputs(prefix: str) -> tuple[gr.Label, gr.Markdown, gr.Dataframe]:
    """A Label for the top-k, the one-line model card and the stage-time table."""
    label = gr.Label(label="Top classes", num_top_classes=10, elem_id=f"{prefix}-label")
    card = gr.Markdown(elem_id=f"{prefix}-card")
    times = gr.Dataframe(headers=list(LATENCY_COLUMNS), label="Latency per stage (ms)",
                         interactive=False, elem_id=f"{prefix}-times")
    return label, card, times


class RuntimeRadio(gr.Radio):
    """A gr.Radio whose value reaches the handler unchecked: the core validates runtimes and says
    why one is refused (unknown: the valid list; onnxruntime missing: not installed), instead of
    gradio's generic "not in the list of choices"."""

    is_template = True

    def preprocess(self, payload):
        return payload


class RuntimeCheckboxes(gr.CheckboxGroup):
    """The same for Compare's several runtimes."""

    is_template = True

    def preprocess(self, payload):
        if payload is None:
            return None
        return list(payload) if isinstance(payload, (list, tuple)) else [payload]


def runtime_selector(prefix: str, multiple: bool = False) -> gr.Radio | gr.CheckboxGroup:
    """PyTorch, ONNX Runtime, ONNX Runtime int8 (PyTorch only, saying why, without onnxruntime)."""
    from dashboard.models.runtimes import DEFAULT_RUNTIME, choices, onnxruntime_missing_reason

    reason = onnxruntime_missing_reason()
    info = reason or "Same weights, another runtime: exported to ONNX on first use and parity-checked."
    if multiple:
        return RuntimeCheckboxes(choices=choices(), value=[DEFAULT_RUNTIME], label="Runtimes", info=info,
                                 elem_id=f"{prefix}-runtime")
    return RuntimeRadio(choices=choices(), value=DEFAULT_RUNTIME, label="Runtime", info=info,
                        elem_id=f"{prefix}-runtime")


TOP_K = dict(minimum=1, maximum=10, step=1, value=3, label="Top-k")
