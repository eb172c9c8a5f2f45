"""The dashboard driven in a real headless Chromium (Playwright), like a person would.

Uses Debian's Chromium (``apt-get install -y chromium``), not a Playwright-downloaded browser.
The app runs in-process over the offline caches with random-init weights, so the predictions are
meaningless: the tests check that things render, never which classes come out. Screenshots go to
``test-output/screenshots/`` and the click-to-label timings to ``test-output/browser_timings.json``
(no assertion is made on time).
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path

import pytest

from benchmarks.browser import ARM_CLICK_TIMER, CHROMIUM_ARGS
from dashboard.compare import AGREEMENT_COLUMNS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
SCREENSHOTS = OUTPUT / "screenshots"
TIMINGS = OUTPUT / "browser_timings.json"
# The first load of a model (and ViT-B on 2 CPU cores) takes several seconds; UI-only waits are short.
MODEL_MS = 120_000
UI_MS = 30_000
PERCENT = re.compile(r"^\d+(\.\d+)?%$")

_timings: dict[str, dict[str, object]] = {}


def _unavailable(reason: str) -> None:
    """Fail in CI (the browser job must really run there); skip on a developer's machine."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"Chromium not found at {CHROMIUM}; install it: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing; install it: pip install -r requirements-dev.txt")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, app_url, photo):
    """One page for the whole module: loaded, with the example photo uploaded into the shared image."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Image classifier dashboard")).to_be_visible()
    page.locator("#shared-image input[type=file]").set_input_files(str(photo))
    expect(page.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()


@pytest.fixture(scope="module", autouse=True)
def write_timings():
    yield
    if _timings:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        TIMINGS.write_text(json.dumps(_timings, indent=2) + "\n")


# --- helpers ---------------------------------------------------------------------------------

def timed_click(page, button: str, label: str) -> dict[str, float]:
    """Click `button` and wait for the Label `label` to show a new result.

    Two clocks: performance.now() in the page, from the click event to the DOM mutation that put
    the new result in the label; and Python's monotonic clock around Playwright's click and wait.
    """
    page.evaluate(ARM_CLICK_TIMER, [button, label])
    start = time.monotonic()
    page.click(button)
    page.wait_for_function("() => window.__t && window.__t.label !== null", timeout=MODEL_MS)
    wall_ms = (time.monotonic() - start) * 1e3
    in_page_ms = page.evaluate("() => window.__t.label - window.__t.click")
    return {"in_page_ms": round(in_page_ms, 1), "python_ms": round(wall_ms, 1)}


def record(page, name: str, prefix: str, timing: dict[str, float]) -> None:
    """Print a timing and keep it for browser_timings.json, with how the model card says the
    model was reached (first use, model cached, or the result cache)."""
    card = page.locator(f"#{prefix}-card").inner_text()
    how = ("result cache" if "result cache" in card else "model cached" if "model cached" in card
           else "first use" if "first use" in card else "unknown")
    _timings[name] = {**timing, "model": how}
    print(f"\nclick-to-label {name} ({how}): {timing['in_page_ms']:.0f} ms in the page "
          f"(performance.now), {timing['python_ms']:.0f} ms from Python (monotonic)")


def expect_label(page, prefix: str, count: int = 3) -> None:
    """A Label with `count` class names, each with a percentage."""
    from playwright.sync_api import expect

    root = page.locator(f"#{prefix}")
    expect(root.get_by_test_id("label-output-value")).not_to_be_empty(timeout=MODEL_MS)
    expect(root.locator(".confidence-set")).to_have_count(count)
    expect(root.locator(".confidence-set dt")).to_have_text([re.compile(r"\w")] * count)
    expect(root.locator(".confidence-set .confidence")).to_have_text([PERCENT] * count)


def table_rows(page, elem_id: str):
    """The rendered data rows of a gr.Dataframe (the header row is not a virtual row)."""
    return page.locator(f"#{elem_id} [role=row].virtual-row")


def expect_single_row(page, elem_id: str, model: str) -> None:
    """The stage-time table of a tab holds exactly one row, for ``model``."""
    from playwright.sync_api import expect

    rows = table_rows(page, elem_id)
    expect(rows).to_have_count(1)
    expect(rows.first.get_by_role("gridcell").first).to_have_text(model)


def screenshot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def select_tab(page, name: str) -> None:
    from playwright.sync_api import expect

    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


# --- the tests, in order: they share one page -----------------------------------------------------


def test_resnet_classifies_the_uploaded_photo(page):
    from playwright.sync_api import expect

    select_tab(page, "ResNet")
    timing = timed_click(page, "#resnet-run", "#resnet-label")
    expect_label(page, "resnet-label")
    expect(page.locator("#resnet-card")).to_contain_text("ResNet-18", timeout=MODEL_MS)
    # "first use" when this module runs alone; other tests of the session may have loaded it already
    record(page, "resnet18_first", "resnet", timing)
    expect_single_row(page, "resnet-times", "ResNet-18")


def test_warm_resnet_on_a_new_image_is_timed(page, photo, tmp_path_factory):
    """The second click, with the model loaded, on bytes no one has sent before (so the result
    cache cannot answer): a real inference, timed from click to label."""
    from PIL import Image
    from playwright.sync_api import expect

    fresh = tmp_path_factory.mktemp("browser") / f"fresh-{os.getpid()}-{time.time_ns()}.jpg"
    with Image.open(photo) as im:
        im = im.convert("RGB")
        im.putpixel((0, 0), tuple(int(b) for b in os.urandom(3)))
        im.save(fresh, quality=90)
    page.locator("#shared-image input[type=file]").set_input_files(str(fresh))
    expect(page.locator(f"#shared-image img[src$='/{fresh.name}']")).to_be_visible()

    timing = timed_click(page, "#resnet-run", "#resnet-label")
    expect_label(page, "resnet-label")
    card = page.locator("#resnet-card")
    expect(card).to_contain_text("ResNet-18")
    expect(card).to_contain_text("model cached")  # loaded, and not answered from the result cache
    record(page, "resnet18_warm", "resnet", timing)
    rows = table_rows(page, "resnet-times")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("cached")
    screenshot(page, "resnet.png")


def test_example_thumbnail_fills_the_image_and_vit_classifies_it(page):
    """Clicking an example replaces the image; switching tabs keeps it."""
    from playwright.sync_api import expect

    lion = page.locator("button.gallery-item").filter(has=page.locator("img[src$='/lion.jpg']"))
    lion.click()
    expect(page.locator("#shared-image img[src$='/lion.jpg']")).to_be_visible()

    select_tab(page, "ViT")
    expect(page.locator("#shared-image img[src$='/lion.jpg']")).to_be_visible()  # switching kept it
    expect(page.locator("#vit-run")).to_be_visible()
    timing = timed_click(page, "#vit-run", "#vit-label")
    expect_label(page, "vit-label")
    expect(page.locator("#vit-card")).to_contain_text("ViT-B/16", timeout=MODEL_MS)
    record(page, "vit_b16_first", "vit", timing)
    expect_single_row(page, "vit-times", "ViT-B/16")
    screenshot(page, "vit.png")


def test_compare_tab_shows_labels_tables_chart_and_csv(page):
    from playwright.sync_api import expect

    select_tab(page, "Compare")
    expect(page.locator("#compare-run")).to_be_visible()
    page.click("#compare-run")

    for i, name in enumerate(["ResNet-18", "ViT-B/16"]):
        expect_label(page, f"compare-label-{i}")
        expect(page.locator(f"#compare-label-{i} [data-testid=block-label]")).to_contain_text(name)
    for i in (2, 3):
        expect(page.locator(f"#compare-label-{i}")).to_be_hidden()

    latency = table_rows(page, "compare-latency")
    expect(latency).to_have_count(2, timeout=MODEL_MS)
    expect(latency.nth(0).get_by_role("gridcell").first).to_have_text("ResNet-18")
    expect(latency.nth(1).get_by_role("gridcell").first).to_have_text("ViT-B/16")
    agreement = table_rows(page, "compare-agreement")
    expect(agreement).to_have_count(1)  # one pair
    headers = page.locator("#compare-agreement [role=columnheader] span.header")
    expect(headers).to_have_text(list(AGREEMENT_COLUMNS))

    chart = page.locator("#compare-chart .vega-embed").locator("svg.marks, canvas").first
    expect(chart).to_be_visible(timeout=MODEL_MS)
    box = chart.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0, f"the chart has no size: {box}"
    expect(page.locator("#compare-chart")).to_contain_text("ResNet-18")
    screenshot(page, "compare.png")

    button = page.locator("#compare-csv")
    expect(button).to_be_enabled()
    with page.expect_download(timeout=UI_MS) as info:
        button.click()
    download = info.value
    assert download.suggested_filename.endswith(".csv"), download.suggested_filename
    with open(download.path(), newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and "model" in rows[0], f"no 'model' column in the CSV: {rows[:1]}"
    assert [r["model"] for r in rows] == ["ResNet-18", "ViT-B/16"]


def test_empty_submit_shows_an_error_toast(page):
    from playwright.sync_api import expect

    page.reload()
    expect(page.locator("#shared-image img")).to_have_count(0)  # the reload cleared the image
    select_tab(page, "ResNet")
    page.click("#resnet-run")
    toast = page.get_by_test_id("toast-body").filter(has_text="Upload an image first")
    expect(toast).to_be_visible()
    expect(toast).to_have_class(re.compile(r"\berror\b"))
    # the toast slides in: wait until it is opaque and wholly on screen before the screenshot
    page.wait_for_function(_SETTLED, arg=toast.element_handle())
    screenshot(page, "error.png")


_SETTLED = """(el) => {
    const r = el.getBoundingClientRect();
    return getComputedStyle(el).opacity === "1" && r.left >= 0 && r.right <= window.innerWidth
        && el.getAnimations().every(a => a.playState !== "running");
}"""
