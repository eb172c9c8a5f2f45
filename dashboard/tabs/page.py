"""The page around the tabs: theme (system fonts only), layout CSS, presenter mode, upload check,
share links.

Nothing here loads from another host: the theme names local system fonts (gradio's default
theme fetches Google Fonts), so the page works offline and behind a classroom firewall.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
from gradio.utils import get_upload_folder

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


# --- share links (gradio's deep links) ---------------------------------------------------------
# Asks gradio for a snapshot of this session (GET gradio_api/deep_link) and shows the link in a
# box, copied to the clipboard where the browser allows it: navigator.clipboard exists only on
# https and localhost, so a classroom server on http://<LAN address> still shows a usable link.
SHARE_JS = """
async () => {
    const url = new URL(window.location.href);
    url.searchParams.delete('deep_link');
    let response;
    try {
        response = await fetch(`gradio_api/deep_link?session_hash=${window.__gradio_session_hash__}`);
    } catch (error) {
        return 'The link could not be made: the server did not answer.';
    }
    const text = await response.text();
    if (!response.ok) {
        try { return JSON.parse(text).detail; } catch (error) { return 'The link could not be made.'; }
    }
    let name;  // empty while this session has sent the server nothing
    try { name = JSON.parse(text); } catch (error) { return 'The link could not be made.'; }
    if (name) url.searchParams.set('deep_link', name);
    try { await navigator.clipboard.writeText(url.toString()); } catch (error) { /* copy by hand */ }
    return url.toString();
}
"""
RESTORED_JS = """
() => window.gradio_config?.deep_link_state === 'valid'
    ? 'Restored from a share link: the image, tab, models and results as they were shared.' : ''
"""
SHARE_INFO = ("Opens this image, tab, models and results in any browser, for about an hour "
              "(links to an uploaded image end when the server deletes the upload).")


class ShareLinkButton(gr.DeepLinkButton):
    """gradio's DeepLinkButton (its icon and its snapshot route), wired by ``share_link``.

    Its own wiring copies to the clipboard only, silently failing on plain http, and adds a
    server event that sleeps a second per click to reset the label; ours shows the link instead.
    """

    def get_block_name(self) -> str:
        return "button"  # the front end's own Button (gradio names a template by its parent class)

    get_block_class = get_block_name

    def activate(self) -> None:
        """Nothing here: ``share_link`` wires the click once the link box exists."""


def share_link(demo: gr.Blocks) -> tuple[ShareLinkButton, gr.Textbox]:
    """A "Copy share link" button, the box that shows the link, and a note on a restored page."""
    restored = gr.Markdown(elem_id="share-restored")
    button = ShareLinkButton("Copy share link", size="sm", elem_classes=["share-link-button"])
    link = gr.Textbox(label="Share link", info=SHARE_INFO, interactive=False, buttons=["copy"],
                      elem_id="share-link")
    button.click(None, outputs=[link], js=SHARE_JS, queue=False, api_visibility="private")
    demo.load(None, outputs=[restored], js=RESTORED_JS, queue=False)
    return button, link


def remember_tab(tabs: gr.Tabs) -> None:
    """Tell the server which tab is selected, so that a share link reopens it: gradio changes
    tabs in the browser only, and a deep link holds what the server last saw.

    One event for all tabs, ``always_last``: answers come back in order, so quick clicks on
    several tabs end on the last one clicked.
    """
    ids = [tab.id for tab in tabs.children if isinstance(tab, gr.Tab)]

    def remember_selected_tab(evt: gr.SelectData):
        index = evt.index  # sent by the browser: anything
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(ids):
            return gr.Tabs(selected=ids[index])
        return gr.skip()

    tabs.select(remember_selected_tab, None, [tabs], queue=False, trigger_mode="always_last",
                api_visibility="private", show_progress="hidden")


def share_middleware(ttl: float):
    """The middleware that bounds the deep links' snapshots (size, number, lifetime ``ttl``)."""
    from starlette.middleware import Middleware

    from dashboard.share_links import DeepLinkLimits

    return Middleware(DeepLinkLimits, directory=Path(get_upload_folder()) / "deep_links", ttl=ttl)
