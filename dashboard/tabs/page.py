"""The page around the tabs: theme (system fonts only), layout CSS, presenter mode, upload check.

Nothing here loads from another host: the theme names local system fonts (gradio's default
theme fetches Google Fonts), so the page works offline and behind a classroom firewall.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from dashboard.handlers import user_errors
from dashboard.palette import MODEL_COLOURS

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
/* model names on result Labels: large and dark, not small grey captions */
[id^="compare-label-"] [data-testid="block-label"], [id^="robust-label-"] [data-testid="block-label"],
#resnet-label [data-testid="block-label"], #vit-label [data-testid="block-label"] {
  font-size: var(--text-lg); font-weight: 600; color: var(--body-text-color);
  /* in the flow, not floating over the answer: a long title ("... expected tabby cat") wraps
     on a phone and pushes the Label's value down instead of covering it */
  position: relative; max-width: 100%;
}
/* presenter mode: everything larger, for the back of a room. gradio's theme variables are
   resolved on :root, so the derived sizes are overridden here too, not only the base scale. */
body.presenter {
  --text-xxs: 13px; --text-xs: 15px; --text-sm: 18px; --text-md: 21px; --text-lg: 25px;
  --text-xl: 32px; --text-xxl: 40px;
  --body-text-size: 21px; --prose-text-size: 21px; --block-label-text-size: 20px;
  --block-info-text-size: 18px; --block-title-text-size: 21px; --checkbox-label-text-size: 20px;
  --input-text-size: 21px; --section-header-text-size: 21px; --button-large-text-size: 24px;
  --button-small-text-size: 20px;
}
body.presenter .gradio-container table { font-size: 1.25rem; }
""" + "".join(  # the n-th chosen model's slot carries the n-th model colour, as in the plots
    f"#compare-label-{i}, #robust-label-{i} {{ border-left: 6px solid {colour}; }}\n"
    for i, colour in enumerate(MODEL_COLOURS))

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
    def check_upload(image_path: str | None) -> None:
        if image_path is not None:
            service.check_image(image_path)

    # its own small concurrency group: the check decodes the image, so /check_image called in a
    # loop must not run unbounded beside the models
    image.upload(check_upload, inputs=[image], outputs=None, api_name="check_image",
                 concurrency_id="upload_check", concurrency_limit=2, show_progress="hidden")
