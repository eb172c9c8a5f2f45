"""The audience flow in headless Chromium at a laptop, a projector and a phone size (issue 9,
items 1-6 and 11), with auto-run on as a visitor gets it by default.

One app (auto-run on) serves the three sizes. Each size walks the same path: nothing runs at
load and the CSV button is disabled; an upload runs the tab shown; the shared top-k and a model
change rerun it (a top-k change from the result cache); switching to Compare runs it, marking the answer repeated from the ResNet tab as an earlier
measurement, and a fair timing fills its table; models keep
their ticking order in the chart; a fifth model is refused in the page; a refusal shows a toast
and no Error box; a model that fails shows its own slot while the others keep theirs; an error
on the ResNet tab leaves no older card behind. Screenshots: test-output/screenshots/flow-*.png.
"""

from __future__ import annotations

import csv
import re

import pytest

from dashboard.compare import LATENCY_COLUMNS
from tests.conftest import serve_app
from tests.test_browser import MODEL_MS, SCREENSHOTS, UI_MS, browser  # noqa: F401  (the shared fixture)
from tests.test_browser_page import SIZES

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def auto_app(model_caches):
    with serve_app(auto_run=True) as app:
        yield f"http://127.0.0.1:{app.settings.port}/"


def _labels(page, elem_id: str):
    return page.locator(f"#{elem_id} .confidence-set")


def _tick(page, group: str, name: str) -> None:
    page.locator(f"#{group}").get_by_label(name, exact=True).check()


def _untick(page, group: str, name: str) -> None:
    page.locator(f"#{group}").get_by_label(name, exact=True).uncheck()


def _set_top_k(page, k: int) -> None:
    box = page.locator("#topk input[type=number]")
    box.fill(str(k))
    box.press("Enter")


def _chart_models(page) -> list[str]:
    """The latency chart's x-axis labels, left to right as drawn."""
    page.wait_for_function("() => document.querySelectorAll('#compare-chart svg text').length > 0")
    texts = page.evaluate("""() => [...document.querySelectorAll('#compare-chart svg g.role-axis-label text')]
        .map(t => [t.getBoundingClientRect().left, t.textContent])""")
    return [name for _, name in sorted(texts) if not re.fullmatch(r"[\d,.]+", name)]  # not the y axis


COMPARE_OUTPUTS = [*(f"compare-label-{i}" for i in range(4)), "compare-latency", "compare-agreement",
                   "compare-chart", "compare-csv"]


def _no_error_boxes(page) -> None:
    """No output of Compare shows gradio's "Error" status (the toast alone says what was refused)."""
    for elem_id in COMPARE_OUTPUTS:
        assert page.locator(f"#{elem_id}").get_by_text("Error", exact=True).count() == 0, elem_id


@pytest.mark.parametrize("size", list(SIZES))
def test_audience_flow(browser, auto_app, photo, size):  # noqa: F811
    from playwright.sync_api import expect

    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    page.goto(auto_app + ("?presenter=1" if size == "projector" else ""))
    expect(page.get_by_role("heading", name="Image classifier dashboard")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # before anything ran: no result, nothing ran at load, and Compare's CSV cannot be clicked
    page.wait_for_timeout(1500)  # time for anything that would run at load (nothing should)
    expect(_labels(page, "resnet-label")).to_have_count(0)
    expect(page.locator("#auto-run input")).to_be_checked()

    # item 6: an upload runs the tab shown (ResNet), with the shared top-k (3)
    page.locator("#shared-image input[type=file]").set_input_files(str(photo))
    expect(_labels(page, "resnet-label")).to_have_count(3, timeout=MODEL_MS)
    expect(page.locator("#resnet-card")).to_contain_text("ResNet-18")
    # another upload replaces the answer once and settles (gradio fires several change events for
    # one upload: they must not clear and rerun the tab in a loop)
    coffee = photo.with_name("coffee.jpg")
    page.locator("#shared-image input[type=file]").set_input_files(str(coffee))
    expect(page.locator(f"#shared-image img[src$='/{coffee.name}']")).to_be_visible()
    expect(page.locator("#resnet-card")).to_contain_text("espresso", timeout=MODEL_MS)  # its expected class
    first = _labels(page, "resnet-label").all_inner_texts()
    page.wait_for_timeout(2000)
    assert _labels(page, "resnet-label").all_inner_texts() == first and len(first) == 3
    page.locator("#shared-image input[type=file]").set_input_files(str(photo))
    expect(page.locator("#resnet-card")).not_to_contain_text("espresso", timeout=MODEL_MS)
    expect(_labels(page, "resnet-label")).to_have_count(3, timeout=MODEL_MS)
    # the shared top-k reruns it from the result cache: no new forward pass
    _set_top_k(page, 5)
    expect(_labels(page, "resnet-label")).to_have_count(5, timeout=MODEL_MS)
    expect(page.locator("#resnet-card")).to_contain_text("answered from the result cache")
    # a model change reruns on the current image; the old model's card is gone
    page.locator("#resnet-model input").click()
    page.get_by_role("option", name="SqueezeNet 1.1", exact=True).click()
    expect(page.locator("#resnet-card")).to_contain_text("SqueezeNet 1.1", timeout=MODEL_MS)
    expect(_labels(page, "resnet-label")).to_have_count(5)
    page.screenshot(path=str(SCREENSHOTS / f"flow-{size}-resnet-auto.png"), full_page=True)

    # item 3: an error on the ResNet tab leaves no older card or Label behind
    page.locator("#resnet-model input").click()
    page.get_by_role("option", name="ResNet-50", exact=True).click()  # no weights in the test caches
    expect(page.get_by_test_id("toast-body").filter(has_text="ResNet-50").first).to_be_visible(timeout=MODEL_MS)
    expect(page.locator("#resnet-card")).not_to_contain_text("SqueezeNet")
    expect(_labels(page, "resnet-label")).to_have_count(0)
    page.locator(".toast-close").first.click()

    # switching to Compare runs it on the current image (defaults: ResNet-18 and ViT-B/16)
    page.get_by_role("tab", name="Compare", exact=True).click()
    download = page.locator("#compare-csv")
    for i in range(2):
        expect(_labels(page, f"compare-label-{i}")).to_have_count(5, timeout=MODEL_MS)
    expect(download).to_be_enabled()
    # item 4: ResNet-18's answer came from the ResNet tab's run: its times are marked as earlier ones
    rows = page.locator("#compare-latency [role=row].virtual-row")
    measured = LATENCY_COLUMNS.index("measured")
    expect(rows.nth(0).get_by_role("gridcell").nth(measured)).to_have_text(re.compile(r"earlier"))
    # ... and a fair timing: a warm-up, then 3 runs of each model, median and spread per stage
    page.locator("#compare-timing").get_by_role("button", name="Fair timing").click()
    runs = page.locator("#compare-timing-runs input[type=number]")
    expect(runs).to_be_visible()
    for _ in range(3):  # the accordion's slider may still be mounting when first typed into
        runs.fill("3")
        runs.press("Enter")
        if runs.input_value() == "3":
            break
        page.wait_for_timeout(500)
    expect(runs).to_have_value("3")
    page.click("#compare-timing-run")
    expect(page.locator("#compare-timing-table [role=row].virtual-row")).to_have_count(8, timeout=MODEL_MS)
    page.screenshot(path=str(SCREENSHOTS / f"flow-{size}-fair-timing.png"), full_page=True)
    # item 5/11: DeiT-Ti ticked third stays third everywhere, though it sorts first by name
    _tick(page, "compare-models-vit", "DeiT-Ti")
    expect(_labels(page, "compare-label-2")).to_have_count(5, timeout=MODEL_MS)
    expect(page.locator("#compare-label-2 [data-testid=block-label]")).to_contain_text("DeiT-Ti")
    expect(page.locator("#compare-latency [role=row].virtual-row")).to_have_count(3)
    assert [m.removesuffix(" (cached)") for m in _chart_models(page)] == ["ResNet-18", "ViT-B/16", "DeiT-Ti"]
    # the slots carry the model colours of the plots, in the same order
    colours = [page.evaluate(f"getComputedStyle(document.querySelector('#compare-label-{i}')).borderLeftColor")
               for i in range(3)]
    assert colours == ["rgb(31, 119, 180)", "rgb(255, 127, 14)", "rgb(44, 160, 44)"]
    # item 11: a fourth is accepted, a fifth is refused in the page itself
    _tick(page, "compare-models-cnn", "SqueezeNet 1.1")
    expect(_labels(page, "compare-label-3")).to_have_count(5, timeout=MODEL_MS)
    page.locator("#compare-models-cnn").get_by_label("ResNet-34", exact=True).click()
    expect(page.locator("#compare-models-cnn").get_by_label("ResNet-34", exact=True)).not_to_be_checked()
    ticked = page.locator(".model-group input[type=checkbox]:checked")
    expect(ticked).to_have_count(4)
    if size == "phone":  # item 11: the tables scroll in their box, the page does not widen
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    page.screenshot(path=str(SCREENSHOTS / f"flow-{size}-compare-four.png"), full_page=True)

    # item 2: with one model, auto-run waits (no toast); Compare refuses with a toast and no Error box
    for group, name in (("compare-models-cnn", "SqueezeNet 1.1"), ("compare-models-vit", "DeiT-Ti"),
                        ("compare-models-vit", "ViT-B/16")):
        _untick(page, group, name)
    expect(page.locator("#compare-label-1")).to_be_hidden()
    expect(download).to_be_disabled()  # the inputs changed: the old CSV is gone with the old results
    page.click("#compare-run")
    toast = page.get_by_test_id("toast-body").filter(has_text="between 2 and 4").first
    expect(toast).to_be_visible()
    _no_error_boxes(page)
    page.locator(".toast-close").first.click()

    # item 1: a failing model shows its own slot; the other keeps its result; the CSV says why
    _tick(page, "compare-models-cnn", "ResNet-50")
    expect(page.locator("#compare-label-1 [data-testid=block-label]")).to_contain_text("failed", timeout=MODEL_MS)
    expect(_labels(page, "compare-label-0")).to_have_count(5)
    expect(download).to_be_enabled()
    with page.expect_download() as info:
        download.click()
    with open(info.value.path(), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["status"]) for r in rows] == [("ResNet-18", "ok"), ("ResNet-50", "failed")]
    page.screenshot(path=str(SCREENSHOTS / f"flow-{size}-compare-failure.png"), full_page=True)

    # a new image clears every tab's results before the tab shown runs again
    page.locator("#shared-image button[aria-label='Remove Image']").first.click()
    expect(_labels(page, "compare-label-0")).to_have_count(0)
    expect(download).to_be_disabled()
    context.close()
