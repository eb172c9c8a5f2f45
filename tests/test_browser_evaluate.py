"""The Evaluate tab in headless Chromium: upload a zip, run, see the tables and gallery, get the CSV.

Random-init weights: which images are misclassified is meaningless; the test checks that the
report renders (counts, rows, thumbnails) and that the CSV holds one row per image. Screenshot:
test-output/screenshots/evaluate.png.
"""

from __future__ import annotations

import csv
import re

import pytest

import evalkit
from test_browser import MODEL_MS, SCREENSHOTS, UI_MS, browser, screenshot, select_tab, table_rows  # noqa: F401

pytestmark = pytest.mark.browser


def test_evaluate_tab_upload_run_tables_gallery_and_csv(browser, app_url, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    folder = evalkit.labelled_folder(tmp_path / "photos", per_class=3,
                                     names={"red": "tench", "green": "207", "blue": "n01443537", "yellow": "zebras"})
    archive = evalkit.zip_folder(folder, tmp_path / "photos.zip")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    try:
        page.goto(app_url)
        select_tab(page, "Evaluate")
        page.locator("#evaluate-zip input[type=file]").set_input_files(str(archive))
        expect(page.locator("#evaluate-zip")).to_contain_text(re.compile(r"photos\s*\.zip"))  # name, extension
        page.click("#evaluate-run")
        status = page.locator("#evaluate-status")
        expect(status).to_contain_text("12 images evaluated", timeout=MODEL_MS)
        expect(status).to_contain_text("zebras")  # the unmatched class is reported
        summary = table_rows(page, "evaluate-summary")
        expect(summary).to_have_count(1)
        expect(summary.first.get_by_role("gridcell").first).to_have_text("resnet18")
        expect(table_rows(page, "evaluate-per-class")).to_have_count(3)
        thumbs = page.locator("#evaluate-gallery img")
        expect(thumbs.first).to_be_visible()
        assert 1 <= thumbs.count() <= 9
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        screenshot(page, "evaluate.png")

        button = page.locator("#evaluate-csv")
        expect(button).to_be_enabled()
        with page.expect_download(timeout=UI_MS) as info:
            button.click()
        with open(info.value.path(), newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 12 and {r["model"] for r in rows} == {"resnet18"}
        assert {r["true class"] for r in rows} == {"tench", "207", "n01443537", "zebras"}
    finally:
        context.close()
