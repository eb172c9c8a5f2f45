"""Section 3b: click-to-label in headless Chromium (Playwright), on the dashboard and the no-op app.

For each run a new distinct image is uploaded into ``#shared-image`` first (the upload and its
preview are timed separately, they happen before the click), then the time from the click event
to the DOM mutation that puts the new result into the Label is read with performance.now().
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.util import ImagePool, median

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000  # the first click may load the model
WARM_TIMEOUT_MS = 20_000

# The Label's state: top class and the exact probabilities of its bars (attributes, so two results
# with the same rounded percentages still differ). tests/test_browser.py uses the same probe.
LABEL_STATE = """(sel) => {
    const root = document.querySelector(sel);
    if (!root) return null;
    const top = root.querySelector("[data-testid=label-output-value]");
    const bars = [...root.querySelectorAll(".confidence-set meter")].map(m => m.getAttribute("value"));
    return JSON.stringify([top ? top.textContent : null, bars]);
}"""

ARM_CLICK_TIMER = """([button, label]) => {
    const state = (__STATE__)(label);
    window.__t = {click: null, label: null};
    document.querySelector(button).addEventListener(
        "click", () => { window.__t.click = performance.now(); }, {capture: true, once: true});
    const root = document.querySelector(label);
    const observer = new MutationObserver(() => {
        const now = (__STATE__)(label);
        if (window.__t.click !== null && now !== state
                && root.querySelectorAll(".confidence-set").length > 0) {
            window.__t.label = performance.now();
            observer.disconnect();
        }
    });
    observer.observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
}""".replace("__STATE__", LABEL_STATE)


def _upload(page, path: Path) -> float:
    """Set the file and wait for its preview (the upload has reached the server); ms."""
    start = time.perf_counter()
    page.locator("#shared-image input[type=file]").set_input_files(str(path))
    page.locator(f"#shared-image img[src$='/{path.name}']").wait_for(state="visible", timeout=TIMEOUT_MS)
    return (time.perf_counter() - start) * 1e3


def _timed_click(page, button: str, label: str, timeout_ms: float = TIMEOUT_MS) -> float | None:
    """Click-to-label ms; None when the Label did not change in time (e.g. an identical result)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.evaluate(ARM_CLICK_TIMER, [button, label])
    page.click(button)
    try:
        page.wait_for_function("() => window.__t && window.__t.label !== null", timeout=timeout_ms)
    except PlaywrightTimeout:
        return None
    return page.evaluate("() => window.__t.label - window.__t.click")


def _forward_cell(page, table: str) -> float | None:
    """The 'forward ms' cell of the dashboard's latency table, as rendered."""
    headers = page.locator(f"#{table} [data-testid^=header-]").all_inner_texts()
    cells = page.locator(f"#{table} [data-testid^=cell-]").all_inner_texts()
    headers = [h.strip() for h in headers]
    if "forward ms" not in headers or len(cells) < len(headers):
        return None
    try:
        return float(cells[headers.index("forward ms")])
    except ValueError:
        return None


def _series(page, pool: ImagePool, button: str, label: str, runs: int, warmup: int,
            forward_table: str | None = None) -> dict:
    clicks, uploads, forwards, missed = [], [], [], 0
    for i in range(warmup + runs):
        up = _upload(page, pool.one())
        ms = _timed_click(page, button, label, TIMEOUT_MS if i == 0 else WARM_TIMEOUT_MS)
        if ms is None:
            missed += 1
            continue
        fwd = _forward_cell(page, forward_table) if forward_table else None
        if i >= warmup:
            clicks.append(ms)
            uploads.append(up)
            forwards.append(fwd)
    return {"click_to_label_ms": median(clicks), "upload_ms": median(uploads),
            "forward_ms": median([f for f in forwards if f is not None]) if any(forwards) else None,
            "samples": clicks, "missed": missed}


def click_to_label(dash_url: str, noop_url: str, pool: ImagePool, runs: int, warmup: int, log=print) -> dict:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        return {"error": f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"}
    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for name, url, button, label, table in (
                ("dashboard", dash_url, "#resnet-run", "#resnet-label", "resnet-times"),
                ("noop", noop_url, "#noop-run", "#noop-label", None),
                ("noop_same_io", noop_url, "#noop3-run", "#noop3-label", None),
            ):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(url, wait_until="domcontentloaded")
                page.locator("#shared-image input[type=file]").wait_for(state="attached")
                out[name] = _series(page, pool, button, label, runs, warmup, table)
                context.close()
                log(f"  {name}: click-to-label {out[name]['click_to_label_ms']:.0f} ms "
                    f"(upload + preview before the click {out[name]['upload_ms']:.0f} ms)")
        finally:
            browser.close()
    return out
