"""The page around the tabs: theme (system fonts only), layout CSS, presenter mode, upload check.

Nothing here loads from another host: the theme names local system fonts (gradio's default
theme fetches Google Fonts), so the page works offline and behind a classroom firewall.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from dashboard.handlers import user_errors

if TYPE_CHECKING:
    from dashboard.service import ClassificationService

SANS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif")
MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")

CSS = """
/* tables scroll inside their own box on a phone instead of widening the page */
.gradio-container .table-wrap, .gradio-container table { max-width: 100%; }
.gradio-container .table-wrap { overflow-x: auto; }
/* dropdown text wraps instead of running under the arrow */
.gradio-container .wrap-inner input { text-overflow: clip; }
/* presenter mode: everything larger, for the back of a room */
body.presenter .gradio-container { font-size: 1.35rem; }
body.presenter .gradio-container table { font-size: 1.25rem; }
body.presenter .gradio-container [data-testid="block-label"] { font-size: 1.2rem; }
"""

# ?presenter=1 ticks the toggle at load; the toggle sets the body class (no server round trip).
PRESENTER_FROM_URL = "() => new URLSearchParams(window.location.search).get('presenter') === '1'"
PRESENTER_APPLY = "(on) => { document.body.classList.toggle('presenter', !!on); return on; }"


def theme() -> gr.themes.Theme:
    """gradio's default look with system fonts: no request to fonts.googleapis.com."""
    return gr.themes.Default(font=[gr.themes.Font(name) for name in SANS],
                             font_mono=[gr.themes.Font(name) for name in MONO])


def page_kwargs() -> dict:
    """The launch() options of the page (gradio 6 takes theme and css in launch, not Blocks)."""
    return dict(theme=theme(), css=CSS)


def presenter_toggle(demo: gr.Blocks) -> gr.Checkbox:
    """A "Presenter mode" checkbox, also ticked by ``?presenter=1``."""
    toggle = gr.Checkbox(label="Presenter mode (larger text)", value=False, elem_id="presenter-mode",
                         container=False)
    toggle.change(None, inputs=[toggle], outputs=[toggle], js=PRESENTER_APPLY, queue=False)
    demo.load(None, outputs=[toggle], js=PRESENTER_FROM_URL, queue=False)
    return toggle


def wire_upload_check(image: gr.Image, service: "ClassificationService") -> None:
    """Flag a file that is not an image (or a bomb) as soon as it is uploaded, as a toast."""

    @user_errors
    def check_upload(path: str | None) -> None:
        if path is not None:
            service.check_image(path)

    image.upload(check_upload, inputs=[image], outputs=None, api_name="check_image",
                 concurrency_limit=None, show_progress="hidden")
