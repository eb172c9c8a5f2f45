"""build_demo(settings) assembles the dashboard; serve(settings) launches it. Nothing runs on import."""

from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path

import gradio as gr

from dashboard.handlers import Handlers
from dashboard.service import ClassificationService
from dashboard.settings import Settings, resolve_settings
from dashboard.tabs import compare as compare_tab
from dashboard.tabs import evaluate as evaluate_tab
from dashboard.tabs import explain as explain_tab
from dashboard.tabs import page
from dashboard.tabs import resnet as resnet_tab
from dashboard.tabs import robustness as robustness_tab
from dashboard.tabs import vit as vit_tab
from dashboard.tabs.autorun import AutoRun, current_tab_state
from dashboard.tabs.common import TOP_K, RawImage, TopKSlider

log = logging.getLogger(__name__)
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
TITLE = "Image classifier dashboard"
INTRO = (f"# {TITLE}\nUpload an image once (file, webcam or clipboard) and explore it with "
         "torchvision CNNs, Vision Transformers from the Hugging Face Hub, or several models side by side: "
         "heatmaps of where each model looks, robustness to blur, noise and more, and accuracy on your own "
         "labelled images. Models load on first use and stay cached.")
# Every `frequency` seconds, delete temporary files (uploads, CSV exports) older than `age`.
DELETE_CACHE = (600, 3600)


def _delete_expired_files(blocks: gr.Blocks, age: float | None) -> None:
    """gradio's delete_files_created_by_app, iterating over copies of the sets of files.

    The sweep runs in a worker thread while uploads add to those sets from the event loop;
    gradio 6.31 iterates over the live sets, so an upload during a sweep raises "Set changed
    size during iteration", which ends the scheduled sweeping for good (found by the soak test:
    temporary files then pile up without bound). Otherwise the same rules: files older than
    ``age`` (all files when None) are deleted, except those a component keeps (the examples).
    """
    keep: set[str] = set()
    for block in list(blocks.blocks.values()):
        keep.update(getattr(block, "keep_in_cache", ()))
    for temp_set in list(blocks.temp_file_sets):
        removed = set()
        for path in list(temp_set):
            if path in keep:
                continue
            try:
                if age is None or time.time() - os.lstat(path).st_ctime > age:
                    os.remove(path)
                    removed.add(path)
            except FileNotFoundError:
                continue
            except OSError as exc:  # one undeletable file must not stop the sweeping
                log.warning("could not delete temporary file %s: %s", path, exc)
        temp_set.difference_update(removed)


def _fix_gradio_cache_sweep() -> None:
    """Install the sweep above where gradio's scheduler and shutdown handler look it up."""
    from gradio import route_utils

    route_utils.delete_files_created_by_app = _delete_expired_files


def example_images() -> list[str]:
    """gradio's own lion and cheetah, then the photos of assets/examples (see CREDITS.md there)."""
    from gradio.media import get_image

    return [get_image("lion.jpg"), get_image("cheetah.jpg"),
            *sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))]


def build_demo(settings: Settings | None = None, service: ClassificationService | None = None, *,
               delete_cache: tuple[int, int] = DELETE_CACHE) -> gr.Blocks:
    """The whole dashboard: the shared image on the left, the tabs on the right. Loads no model.

    ``delete_cache`` is gradio's (frequency, age) in seconds; soak tests shorten it.
    """
    settings = settings or resolve_settings()
    service = service or ClassificationService(settings)
    _fix_gradio_cache_sweep()
    with gr.Blocks(title=TITLE, delete_cache=delete_cache) as demo:
        gr.Markdown(INTRO)
        page.presenter_toggle(demo)
        # image and examples on the left, the tabs on the right; the row wraps on narrow screens
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=340):
                image = RawImage(label="Image", type="filepath", sources=["upload", "webcam", "clipboard"],
                                 height=320, elem_id="shared-image")
                image.max_bytes = max_file_bytes(settings)  # data: URLs sent through the API are capped too
                page.wire_upload_check(image, service)
                with gr.Row():
                    top_k = TopKSlider(**TOP_K, elem_id="topk")  # one top-k, shared by every tab
                    auto_run = gr.Checkbox(value=settings.auto_run, label="Run on change",
                                           info="A new image, model or top-k reruns the tab shown",
                                           elem_id="auto-run")
                # No fn: clicking an example only fills the image, so nothing is cached or run at start-up.
                examples = gr.Examples(examples=[[p] for p in example_images()], inputs=[image], label="Examples",
                                       examples_per_page=8, cache_examples=False)
                page.share_link(demo)  # a link that reopens image, tab, models and results
            tabs_column = gr.Column(scale=3, min_width=340)
        handlers = Handlers(service, Path(image.GRADIO_CACHE) / "exports")
        image.example_loaded = examples.load_input_event  # for the listeners of a new image (tabs.autorun)
        auto = AutoRun(image, top_k, auto_run, current_tab_state("resnet"))
        with tabs_column:
            with gr.Tabs() as tabs:
                with gr.Tab("ResNet", id="resnet") as resnet:
                    resnet_tab.build_tab(image, handlers, auto)
                with gr.Tab("ViT", id="vit") as vit:
                    vit_tab.build_tab(image, handlers, settings.allow_custom_models, auto)
                with gr.Tab("Compare", id="compare") as compare:
                    compare_tab.build_tab(image, handlers, auto)
                with gr.Tab("Robustness", id="robustness") as robustness:
                    robustness_tab.build_tab(image, handlers, settings.max_sweep_steps, auto)
                with gr.Tab("Evaluate", id="evaluate") as evaluate:
                    evaluate_tab.build_tab(handlers)
            for tab, tab_id in ((resnet, "resnet"), (vit, "vit"), (compare, "compare"),
                                (robustness, "robustness"), (evaluate, "evaluate")):
                auto.wire_selection(tab, tab_id)

        page.remember_tab(tabs)  # the selected tab is part of a share link
        explain_tab.build_explain_api(image, handlers)  # /explain (API only)
    # Model events share one concurrency group; requests that overlap are merged into one
    # forward pass by the service, so the group admits a full batch per forward slot.
    demo.queue(max_size=settings.queue_max_size,
               default_concurrency_limit=settings.workers * settings.max_batch_size)
    demo.service = service  # type: ignore[attr-defined]  # for preloading and tests
    return demo


def max_file_bytes(settings: Settings) -> int:
    return int(settings.max_file_size_mb * 2**20)


def launch_kwargs(settings: Settings) -> dict:
    """The hardened launch options shared by the CLI, the Space entry and the tests."""
    from starlette.middleware import Middleware

    from dashboard.http_limits import BodySizeLimit, body_cap

    return dict(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        max_file_size=max_file_bytes(settings),
        show_error=False,  # curated gr.Error messages only
        allowed_paths=[],
        **page.page_kwargs(),  # theme (system fonts) and layout CSS
        footer_links=["api", "gradio"],
        # the upload cap holds on every route: JSON bodies (base64 data: URLs) are capped too
        app_kwargs={"middleware": [Middleware(BodySizeLimit, max_body=body_cap(max_file_bytes(settings))),
                                   page.share_middleware(ttl=DELETE_CACHE[1])]},  # bounded share links
    )


def check_address(settings: Settings) -> None:
    """Fail fast, in one line, when the address cannot be listened on (gradio would print a
    traceback or a misleading "Cannot find empty port")."""
    import socket

    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
    except OSError:
        raise ValueError(f"cannot listen on host {settings.host!r}: no such address on this machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(f"port {settings.port} on {settings.host} is already in use "
                                 "(choose another with --port or DASHBOARD_PORT)") from None
            raise ValueError(f"cannot listen on {settings.host}:{settings.port} ({exc.strerror})") from None


def serve(settings: Settings | None = None) -> None:
    """Build, preload what was asked for, serve, then (unless turned off) load the default
    models in the background, and serve until interrupted."""
    settings = settings or resolve_settings()
    if settings.port:
        check_address(settings)
    demo = build_demo(settings)
    problem = demo.service.check_device()  # type: ignore[attr-defined]
    if problem:
        log.error("DASHBOARD_DEVICE=%s: %s; visitors are told so until it is fixed",
                  settings.device, problem)
    if settings.preload:
        for key, info in demo.service.preload(settings.preload).items():  # type: ignore[attr-defined]
            log.info("preloaded %s (%s)", key, info.describe())
    demo.launch(**launch_kwargs(settings), prevent_thread_lock=True)
    if settings.background_preload:  # only now: the page is already being served
        from dashboard.loading import start_background_preload
        from dashboard.models.registry import DEFAULT_COMPARE_KEYS

        start_background_preload(demo.service, DEFAULT_COMPARE_KEYS,  # type: ignore[attr-defined]
                                 after_url=demo.local_url)
    demo.block_thread()


def main() -> int:
    """The Space entry (app.py): a configuration error is one line and exit status 1."""
    import sys

    from dashboard.errors import DashboardError
    from dashboard.logsetup import configure_logging

    configure_logging()  # the same log lines as `python -m dashboard`
    try:
        serve()
    except (DashboardError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
