"""Pieces shared by the tabs: the raw image input and the per-model output block."""

from __future__ import annotations

import base64
import binascii
import html
import os
import tempfile

import gradio as gr
from gradio.data_classes import ImageData

from dashboard.compare import LATENCY_COLUMNS
from dashboard.errors import EmptyImageError
from dashboard.handlers import user_errors
from dashboard.models.registry import SHOWN_PREFIX


class RawImage(gr.Image):
    """A gr.Image whose handler receives the uploaded file untouched.

    gr.Image's own preprocessing opens every upload with all of Pillow's plugins; our core
    (dashboard.images) must be the first and only code that parses user bytes, so that refusals
    are specific and decompression bombs are never decoded.
    """

    is_template = True  # rendered by the front end's own Image component
    max_bytes: int | None = None  # the upload cap, set by the app; also applied to data: URLs
    example_loaded = None  # the Examples event that fills this image, set by the app (tabs.autorun)

    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):  # base64 from an API client
            encoded = payload.url.split(",", 1)[1] if "," in payload.url else ""
            # checked from the encoded length, before anything is decoded or written
            if self.max_bytes is not None and len(encoded) // 4 * 3 > self.max_bytes:
                raise gr.Error(
                    f"The image is larger than this server accepts ({self.max_bytes / 2**20:g} MB at "
                    "most). Send a smaller file.", print_exception=False)
            try:
                data = base64.b64decode(encoded, validate=False)
            except (IndexError, binascii.Error, ValueError):
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


def cleared_model_outputs(*inputs: object) -> tuple:
    """A single-model tab's Label, stage table and card, emptied (the inputs changed or a run
    was asked for: nothing shown may belong to the previous input)."""
    return None, None, ""


@user_errors
def check_image_given(image_path: str | None, *inputs: object) -> None:
    """Refused before anything is cleared: there is no image yet."""
    if image_path is None:
        raise EmptyImageError("Upload an image first (or pick one of the examples).")


class TopKSlider(gr.Slider):
    """The top-k slider, checked on the server: gr.Slider would round 2.5 to 2 silently and
    answer "abc" with a generic error. Whole numbers from minimum to maximum only."""

    is_template = True  # rendered by the front end's own Slider component

    def preprocess(self, payload: float | None) -> int:
        if isinstance(payload, bool) or not isinstance(payload, (int, float)) or payload != payload:
            raise gr.Error(f"Top-k must be a whole number from {self.minimum:g} to {self.maximum:g}; "
                           f"{html.escape(str(payload)[:20])!r} is not a number.", print_exception=False)
        if isinstance(payload, float) and not payload.is_integer() or not self.minimum <= payload <= self.maximum:
            raise gr.Error(f"Top-k must be a whole number from {self.minimum:g} to {self.maximum:g}, "
                           f"not {payload:g}.", print_exception=False)
        return int(payload)


def _not_a_choice(value: object, choices: list) -> gr.Error:
    text = str(value)
    prefix = text[:SHOWN_PREFIX] + ("…" if len(text) > SHOWN_PREFIX else "")
    return gr.Error(f"Unknown model: {html.escape(prefix)} is not in the list of choices "
                    f"({', '.join(str(c) for c in choices)}).", print_exception=False)


class ModelDropdown(gr.Dropdown):
    """A model menu whose refusal quotes a short, escaped prefix of what was sent: gr.Dropdown
    echoes the whole value (a million characters, HTML included) into its error."""

    is_template = True  # rendered by the front end's own Dropdown component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise _not_a_choice(payload, [value for _, value in self.choices]) from None


class ModelChoices(gr.CheckboxGroup):
    """The Compare tab's model choice, with the same short refusal as ModelDropdown."""

    is_template = True  # rendered by the front end's own CheckboxGroup component

    def preprocess(self, payload):
        if not isinstance(payload, list):
            raise gr.Error("Choose the models to compare from the list.", print_exception=False)
        choices = [value for _, value in self.choices]
        for value in payload:
            if value not in choices:
                raise _not_a_choice(value, choices)
        return super().preprocess(payload)


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


TOP_K = dict(minimum=1, maximum=10, step=1, value=3, label="Top-k (every tab)")
