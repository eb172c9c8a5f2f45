"""The framework's floor: a tiny Gradio app with the dashboard's image input and no model.

``python benchmarks/noop_app.py --port P`` serves two endpoints, launched and queued like the
dashboard (same ``launch_kwargs``, same queue settings):

* ``/noop`` (button ``#noop-run`` -> Label ``#noop-label``): the image path in, a gr.Label value
  out; the function does nothing else.
* ``/noop_same_io`` (``#noop3-run`` -> ``#noop3-label``): the same inputs and outputs as
  ``/classify_resnet`` (image, dropdown, slider -> Label, Dataframe, Markdown) with constant
  values, so that the cost of the extra components is separated from our handler's.

The Label's probabilities change with every call (a counter), only so that a browser can see
that a new result arrived; computing them costs nothing.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr

from dashboard.app import launch_kwargs
from dashboard.compare import LATENCY_COLUMNS
from dashboard.settings import resolve_settings
from dashboard.tabs.common import RawImage

_counter = itertools.count()
CARD = ("**ResNet-18** · 11.7M parameters · input 224×224 · 1000 classes · weights "
        "`torchvision ResNet18_Weights.IMAGENET1K_V1` · cpu · model cached")


def _label() -> dict[str, float]:
    n = next(_counter) % 97
    return {"tabby": 0.5 + n / 1000, "tiger cat": 0.2, "Egyptian cat": 0.1}


def noop(image_path: str | None) -> dict[str, float]:
    return _label()


def noop_same_io(image_path: str | None, key: str, k: float):
    import pandas as pd

    times = pd.DataFrame([("ResNet-18", "11.7M", "cached", 3.0, 60.0, 0.2, 63.2, "cpu")],
                         columns=list(LATENCY_COLUMNS))
    return _label(), times, CARD


def build(settings) -> gr.Blocks:
    with gr.Blocks(title="no-op floor") as demo:
        image = RawImage(label="Image", type="filepath", sources=["upload", "webcam", "clipboard"],
                         height=320, elem_id="shared-image")
        button = gr.Button("No-op", elem_id="noop-run")
        label = gr.Label(label="Top classes", num_top_classes=10, elem_id="noop-label")
        button.click(noop, [image], [label], api_name="noop", concurrency_id="models")

        model = gr.Dropdown(choices=[("ResNet-18", "resnet18")], value="resnet18", label="Model")
        top_k = gr.Slider(minimum=1, maximum=10, step=1, value=3, label="Top-k")
        button3 = gr.Button("No-op, same outputs", elem_id="noop3-run")
        label3 = gr.Label(label="Top classes", num_top_classes=10, elem_id="noop3-label")
        times = gr.Dataframe(headers=list(LATENCY_COLUMNS), interactive=False, elem_id="noop3-times")
        card = gr.Markdown(elem_id="noop3-card")
        button3.click(noop_same_io, [image, model, top_k], [label3, times, card],
                      api_name="noop_same_io", concurrency_id="models")
    demo.queue(max_size=settings.queue_max_size,
               default_concurrency_limit=settings.workers * settings.max_batch_size)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = resolve_settings(port=args.port)
    build(settings).launch(**launch_kwargs(settings), quiet=True)


if __name__ == "__main__":
    main()
