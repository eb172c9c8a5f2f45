"""The Robustness tab in headless Chromium: move the slider, see the preview and the Labels change;
run a sweep and see the chart. Screenshots go to ``test-output/screenshots/robustness-*.png``.

Random-init weights: the classes that come out mean nothing; the tests check that each output
renders and follows the controls.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from benchmarks.browser import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
MODEL_MS = 180_000  # first use of ViT-B/16 and a sweep of 8 images on 2 shared CPU cores
UI_MS = 30_000


@pytest.fixture(scope="module")
def page(app_url, photo):
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(f"Chromium not found at {CHROMIUM}", pytrace=False)
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(UI_MS)
        page.goto(app_url)
        page.locator("#shared-image input[type=file]").set_input_files(str(photo))
        expect(page.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
        tab = page.get_by_role("tab", name="Robustness", exact=True)
        tab.click()
        expect(tab).to_have_attribute("aria-selected", "true")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        yield page
        browser.close()


def move_slider(page, elem_id: str, fraction: float) -> None:
    """Drag the slider's thumb with the mouse to ``fraction`` of its track, as a person would."""
    track = page.locator(f"#{elem_id} input[type=range]")
    box = track.bounding_box()
    assert box, f"#{elem_id} has no range input on screen"
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=5)
    page.mouse.up()


def label_text(page, i: int) -> str:
    return page.locator(f"#robust-label-{i}").inner_text()


def test_moving_the_slider_changes_the_preview_and_the_labels(page):
    from playwright.sync_api import expect

    preview = page.locator("#robust-preview img")
    caption, summary = page.locator("#robust-caption"), page.locator("#robust-summary")
    move_slider(page, "robust-strength", 0.25)
    expect(preview).to_be_visible(timeout=MODEL_MS)
    expect(caption).to_contain_text("Gaussian blur, strength 0.2", timeout=MODEL_MS)
    # the summary comes with the Labels, once every model has answered at the new strength
    expect(summary).to_contain_text(re.compile(r"At strength 0\.2\d?:"), timeout=MODEL_MS)
    for i, name in enumerate(["ResNet-18", "ViT-B/16"]):
        root = page.locator(f"#robust-label-{i}")
        expect(root.locator(".confidence-set")).to_have_count(3, timeout=MODEL_MS)
        expect(root.locator("[data-testid=block-label]")).to_contain_text(
            re.compile(rf"{re.escape(name)} · (same top-1 as the clean image|⚠ top-1 changed)"))
    first_src = preview.get_attribute("src")
    first_labels = [label_text(page, i) for i in range(2)]
    page.screenshot(path=str(SCREENSHOTS / "robustness-slider-low.png"), full_page=True)

    move_slider(page, "robust-strength", 1.0)
    expect(caption).to_contain_text("strength 1 (sigma 8 px)", timeout=MODEL_MS)
    expect(preview).not_to_have_attribute("src", first_src)
    expect(summary).to_contain_text("At strength 1:", timeout=MODEL_MS)
    for i in range(2):
        expect(page.locator(f"#robust-label-{i} .confidence-set")).to_have_count(3)
    assert [label_text(page, i) for i in range(2)] != first_labels, "the Labels did not follow the slider"
    expect(page.locator("#robust-label-2")).to_be_hidden()
    page.screenshot(path=str(SCREENSHOTS / "robustness-slider-high.png"), full_page=True)


def test_a_sweep_draws_the_chart_table_and_gallery(page):
    from playwright.sync_api import expect

    page.click("#robust-sweep")
    chart = page.locator("#robust-chart .vega-embed").locator("svg.marks, canvas").first
    expect(chart).to_be_visible(timeout=MODEL_MS)
    box = chart.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0, f"the chart has no size: {box}"
    expect(page.locator("#robust-chart")).to_contain_text("ResNet-18")
    expect(page.locator("#robust-chart")).to_contain_text("ViT-B/16")
    rows = page.locator("#robust-changes [role=row].virtual-row")
    expect(rows).to_have_count(2, timeout=MODEL_MS)
    expect(rows.nth(0).get_by_role("gridcell").first).to_have_text("ResNet-18")
    gallery = page.locator("#robust-gallery img")
    expect(gallery).to_have_count(8, timeout=MODEL_MS)
    expect(page.locator("#robust-gallery")).to_contain_text("strength 0.00 · sigma 0 px")
    page.locator("#robust-chart").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "robustness-sweep.png"), full_page=True)


def test_a_new_image_clears_the_stale_answers(page):
    from playwright.sync_api import expect

    expect(page.locator("#robust-gallery img")).to_have_count(8)  # the previous test's sweep
    lion = page.locator("button.gallery-item").filter(has=page.locator("img[src$='/lion.jpg']"))
    lion.click()
    expect(page.locator("#shared-image img[src$='/lion.jpg']")).to_be_visible()
    expect(page.locator("#robust-gallery img")).to_have_count(0)
    expect(page.locator("#robust-preview img")).to_have_count(0)
    expect(page.locator("#robust-changes [role=row].virtual-row")).to_have_count(0)
    expect(page.locator("#robust-summary")).to_have_text("")
    expect(page.locator("#robust-label-0 .confidence-set")).to_have_count(0)
