"""Heatmaps in a real headless Chromium: the Explain panels of ResNet, ViT and Compare.

Random-init weights: the tests check that overlays render where they should, never what they
show. Screenshots: test-output/screenshots/explain_{resnet,vit,compare}.png.
"""

from __future__ import annotations

import re

import pytest

from tests.test_browser import MODEL_MS, SCREENSHOTS, UI_MS, browser, expect_label, page, select_tab  # noqa: F401

pytestmark = pytest.mark.browser


def overlay_shown(page, elem_id: str) -> None:
    """The Image component shows a rendered picture with a real size."""
    from playwright.sync_api import expect

    img = page.locator(f"#{elem_id} img").first
    expect(img).to_be_visible(timeout=MODEL_MS)
    page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=UI_MS)
    box = img.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 50, box


def shot(page, name: str, elem_id: str) -> None:
    page.locator(f"#{elem_id}").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_resnet_overlay_for_a_chosen_top_k_class(page):
    from playwright.sync_api import expect

    select_tab(page, "ResNet")
    page.click("#resnet-run")
    expect_label(page, "resnet-label")
    second = page.locator("#resnet-label .confidence-set dt").nth(1).inner_text().strip()
    # the class menu now offers the top-1 and the shown top-k
    page.locator("#resnet-explain-class input").click()
    options = page.get_by_role("option")
    expect(options).to_have_count(4)
    expect(options.nth(2)).to_contain_text(second)  # after "Top-1 (the prediction)" and the top-1
    options.nth(2).click()
    page.click("#resnet-explain-run")
    overlay_shown(page, "resnet-explain-overlay")
    caption = page.locator("#resnet-explain-caption")
    expect(caption).to_contain_text("Grad-CAM", timeout=MODEL_MS)
    expect(caption).to_contain_text(f"class {second}")
    expect(page.locator("#resnet-explain .explain-legend")).to_contain_text("high")
    shot(page, "explain_resnet.png", "resnet-explain")


def test_vit_overlay_with_attention_rollout_by_default(page):
    from playwright.sync_api import expect

    select_tab(page, "ViT")
    page.click("#vit-explain-run")  # no classification first: the top-1 is explained
    overlay_shown(page, "vit-explain-overlay")
    caption = page.locator("#vit-explain-caption")
    expect(caption).to_contain_text("Attention rollout", timeout=MODEL_MS)
    expect(caption).to_contain_text("ViT-B/16")
    shot(page, "explain_vit.png", "vit-explain")


def test_compare_one_titled_overlay_per_model(page):
    from playwright.sync_api import expect

    select_tab(page, "Compare")
    page.click("#compare-explain-run")
    for i, (name, method) in enumerate([("ResNet-18", "Grad-CAM"), ("ViT-B/16", "Attention rollout")]):
        overlay_shown(page, f"compare-explain-{i}")
        title = page.locator(f"#compare-explain-{i} [data-testid=block-label]")
        expect(title).to_contain_text(re.compile(rf"^\s*{re.escape(name)} · .+ · {method} · \d+ ms\s*$"))
    for i in (2, 3):
        expect(page.locator(f"#compare-explain-{i}")).to_be_hidden()
    shot(page, "explain_compare.png", "compare-explain")
