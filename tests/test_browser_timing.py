"""Issue 9 item 4 in headless Chromium: a repeated comparison marks its times as earlier ones, and
the Fair timing panel fills its table and is cleared when the models change."""

from __future__ import annotations

import re

import pytest

from dashboard.compare import LATENCY_COLUMNS, MEASURED_EARLIER, MEASURED_NOW
from dashboard.timing import TIMING_COLUMNS
from tests.test_browser import SCREENSHOTS, UI_MS, browser  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.browser

MODEL_MS = 180_000  # first loads and ViT-B/16 on 2 shared CPU cores


@pytest.fixture(scope="module")
def page(browser, app_url, photo):  # noqa: F811  (the shared Chromium of tests/test_browser.py)
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Image classifier dashboard")).to_be_visible()
    page.locator("#shared-image input[type=file]").set_input_files(str(photo))
    expect(page.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
    tab = page.get_by_role("tab", name="Compare", exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()


def test_a_repeated_comparison_is_marked_in_the_table(page):
    from playwright.sync_api import expect

    rows = page.locator("#compare-latency [role=row].virtual-row")
    page.click("#compare-run")
    expect(rows).to_have_count(2, timeout=MODEL_MS)
    measured = LATENCY_COLUMNS.index("measured")
    cells = [rows.nth(i).get_by_role("gridcell").nth(measured) for i in range(2)]
    for cell in cells:  # "now", or already "earlier" when another test of the session asked the same
        expect(cell).to_have_text(re.compile(f"^\\s*({MEASURED_NOW}|{re.escape(MEASURED_EARLIER)})\\s*$"))
    page.click("#compare-run")  # the same image and models: answered from the result cache
    for cell in cells:
        expect(cell).to_have_text(re.compile(rf"^\s*{re.escape(MEASURED_EARLIER)}\s*$"), timeout=MODEL_MS)
    expect(page.locator("#compare-chart")).to_contain_text("(cached)", timeout=MODEL_MS)
    expect(page.locator("#compare-latency-help")).to_contain_text("earlier (cached answer)")


def test_fair_timing_fills_its_table_and_a_model_change_clears_it(page):
    from playwright.sync_api import expect

    page.locator("#compare-timing").get_by_role("button", name="Fair timing").click()
    runs = page.locator("#compare-timing-runs input[type=number]")
    expect(runs).to_be_visible()
    runs.fill("3")
    runs.press("Enter")
    page.click("#compare-timing-run")
    rows = page.locator("#compare-timing-table [role=row].virtual-row")
    expect(rows).to_have_count(8, timeout=MODEL_MS)  # 2 models x (3 stages + total)
    headers = page.locator("#compare-timing-table [role=columnheader] span.header")
    expect(headers).to_have_text(list(TIMING_COLUMNS))
    runs_column = TIMING_COLUMNS.index("runs")
    expect(rows.nth(0).get_by_role("gridcell").nth(runs_column)).to_have_text(re.compile(r"^\s*3\s*$"))
    expect(page.locator("#compare-timing-help")).to_contain_text("warm-up")
    page.locator("#compare-timing").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "compare-fair-timing.png"), full_page=True)
    page.locator("#compare-models-cnn").get_by_label("SqueezeNet 1.1", exact=True).check()
    expect(rows).to_have_count(0)  # the table belonged to the previous choice
