"""The runtime selectors (ResNet, Compare, Evaluate), Compare's model x runtime pairs and its
PyTorch-only heatmaps, in headless Chromium (issue 12)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.browser import CHROMIUM_ARGS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
MODEL_MS = 180_000  # first use exports ResNet-18 to ONNX (and quantises it) on 2 CPU cores
UI_MS = 30_000


@pytest.fixture(scope="module")
def page(app_url, photo):
    from playwright.sync_api import expect

    if not CHROMIUM.exists():
        reason = f"Chromium not found at {CHROMIUM}; install it: apt-get install -y chromium"
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(UI_MS)
        page.goto(app_url)
        expect(page.get_by_role("heading", name="Image classifier dashboard")).to_be_visible()
        page.locator("#shared-image input[type=file]").set_input_files(str(photo))
        expect(page.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
        yield page
        browser.close()


def _tab(page, name: str) -> None:
    from playwright.sync_api import expect

    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def test_resnet_tab_runs_on_onnxruntime_int8(page):
    from playwright.sync_api import expect

    _tab(page, "ResNet")
    page.locator("#resnet-runtime").get_by_label("ONNX Runtime int8", exact=True).check()
    page.click("#resnet-run")
    card = page.locator("#resnet-card")
    expect(card).to_contain_text("runtime ONNX Runtime int8", timeout=MODEL_MS)
    expect(card).to_contain_text("top-1 agreement")
    expect(card).to_contain_text("MB")
    row = page.locator("#resnet-times [role=row].virtual-row").first.get_by_role("gridcell")
    expect(row.nth(0)).to_have_text("ResNet-18 · ONNX Runtime int8")
    expect(row.nth(1)).to_have_text("onnxruntime-int8")


def test_compare_shows_one_model_on_two_runtimes(page):
    from playwright.sync_api import expect

    _tab(page, "Compare")
    page.locator("#compare-models-vit").get_by_label("ViT-B/16", exact=True).uncheck()
    page.locator("#compare-runtime").get_by_label("ONNX Runtime", exact=True).check()
    page.click("#compare-run")
    rows = page.locator("#compare-latency [role=row].virtual-row")
    expect(rows).to_have_count(2, timeout=MODEL_MS)
    expect(rows.nth(0).get_by_role("gridcell").first).to_have_text("ResNet-18")
    expect(rows.nth(1).get_by_role("gridcell").first).to_have_text("ResNet-18 · ONNX Runtime")
    agreement = page.locator("#compare-agreement [role=row].virtual-row").first.get_by_role("gridcell")
    expect(agreement.nth(2)).to_have_text("true")  # same weights, same top-1


def test_compare_heatmaps_run_on_pytorch_whatever_the_runtimes_ticked(page):
    """After the ONNX Runtime comparison above, the heatmap panel still explains with PyTorch
    (it sends runtime "pytorch") and says so."""
    from playwright.sync_api import expect

    _tab(page, "Compare")
    expect(page.locator("#compare-runtime").get_by_label("ONNX Runtime", exact=True)).to_be_checked()
    expect(page.locator("#compare-explain-runtime-note")).to_contain_text("computed with PyTorch")
    page.click("#compare-explain-run")
    title = page.locator("#compare-explain-0 [data-testid=block-label]")
    expect(title).to_contain_text("ResNet-18 · ", timeout=MODEL_MS)
    expect(title).to_contain_text("Grad-CAM")


def test_evaluate_tab_runs_on_the_chosen_runtime(page, tmp_path):
    import csv

    from playwright.sync_api import expect

    import evalkit

    folder = evalkit.labelled_folder(tmp_path / "photos", per_class=2,
                                     names={"red": "tench", "green": "207", "blue": "n01443537", "yellow": "goldfish"})
    archive = evalkit.zip_folder(folder, tmp_path / "photos.zip")
    _tab(page, "Evaluate")
    page.locator("#evaluate-zip input[type=file]").set_input_files(str(archive))
    page.locator("#evaluate-runtime").get_by_label("ONNX Runtime", exact=True).check()
    page.click("#evaluate-run")
    expect(page.locator("#evaluate-status")).to_contain_text("8 images evaluated", timeout=MODEL_MS)
    cells = page.locator("#evaluate-summary [role=row].virtual-row").first.get_by_role("gridcell")
    expect(cells.first).to_have_text("resnet18@onnxruntime")
    expect(cells.last).to_have_text("onnxruntime")
    with page.expect_download(timeout=UI_MS) as info:
        page.locator("#evaluate-csv").click()
    with open(info.value.path(), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {(r["model"], r["runtime"]) for r in rows} == {("resnet18@onnxruntime", "onnxruntime")}
