"""Share links (issue 9, item 14) in headless Chromium: what a link restores, and that two
sessions never see each other's results through links.

Session A (one browser context) picks an example, ticks two models, runs Compare and makes a
link; session B, in another context at the same time, uploads another photo and classifies it on
the ResNet tab. A fresh context opening A's link sees A's image, the Compare tab, A's models and
A's results, and nothing of B's; the plain address shows no results; A's link is the same after
B ran. Predictions come from random-init weights: the test compares texts, never classes.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.test_browser import MODEL_MS, UI_MS, browser, expect_label, select_tab, table_rows  # noqa: F401

pytestmark = pytest.mark.browser

COMPARED = ["ResNet-18", "DeiT-Ti"]  # the fastest pair in the test caches


def _context(browser, origin: str):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    return context, page


def _open(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("heading", name="Image classifier dashboard")).to_be_visible()


def _share(page) -> str:
    """Click "Copy share link"; the link copied to the clipboard, which the box shows too.
    (Headless Chromium has one clipboard for all its contexts: the test shares one at a time.)"""
    from playwright.sync_api import expect

    page.evaluate("navigator.clipboard.writeText('nothing yet')")
    page.get_by_role("button", name="Copy share link").click()
    link = "nothing yet"
    for _ in range(UI_MS // 50):  # wait_for_function does not await a promise; poll the clipboard
        link = page.evaluate("navigator.clipboard.readText()")
        if link != "nothing yet":
            break
        page.wait_for_timeout(50)
    assert "deep_link=" in link, link
    expect(page.locator("#share-link textarea")).to_have_value(link)
    return link


def _settled_link(page) -> str:
    """The link of a page whose events have all finished (the Compare tab's facts block
    refreshes after the tables, and that is part of the session too): the same at each click."""
    # not "networkidle": gradio's heartbeat request (the page has per-session State) never ends
    link = _share(page)
    for _ in range(20):
        page.wait_for_timeout(500)
        again = _share(page)
        if again == link:
            return link
        link = again
    raise AssertionError("the share link kept changing: some event never finished")


def _label_texts(page, elem_id: str) -> list[str]:
    return page.locator(f"#{elem_id} .confidence-set").all_inner_texts()


def _rows(page, elem_id: str) -> list[str]:
    return table_rows(page, elem_id).all_inner_texts()


def _models_in(page, elem_id: str) -> list[str]:
    """The first cell (the model) of each row of a table."""
    rows = table_rows(page, elem_id)
    return [rows.nth(i).get_by_role("gridcell").first.inner_text() for i in range(rows.count())]


def _checked(page, elem_id: str) -> list[str]:
    boxes = page.locator(f"#{elem_id} label")
    return [boxes.nth(i).inner_text().strip() for i in range(boxes.count())
            if boxes.nth(i).locator("input").is_checked()]


def test_a_share_link_restores_its_own_session_and_nothing_of_another(browser, app_url, photo):  # noqa: F811
    from playwright.sync_api import expect

    origin = app_url.rstrip("/")
    context_a, a = _context(browser, origin)
    context_b, b = _context(browser, origin)
    _open(a, app_url)
    _open(b, app_url)

    # A: the cheetah example, Compare with ResNet-18 and DeiT-Ti
    a.locator("button.gallery-item").filter(has=a.locator("img[src$='/cheetah.jpg']")).click()
    expect(a.locator("#shared-image img[src$='/cheetah.jpg']")).to_be_visible()
    select_tab(a, "Compare")
    a.locator("#compare-models-vit").get_by_label("ViT-B/16", exact=True).uncheck()
    a.locator("#compare-models-vit").get_by_label("DeiT-Ti", exact=True).check()
    # B: another photo on the ResNet tab, started while A's comparison runs
    b.locator("#shared-image input[type=file]").set_input_files(str(photo))
    expect(b.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
    a.click("#compare-run")
    b.click("#resnet-run")
    for i in range(2):
        expect_label(a, f"compare-label-{i}")
    expect(table_rows(a, "compare-latency")).to_have_count(2, timeout=MODEL_MS)
    expect_label(b, "resnet-label")

    link_a = _settled_link(a)
    link_b = _settled_link(b)
    assert link_a != link_b
    assert urlsplit(link_a).netloc == urlsplit(app_url).netloc
    assert set(parse_qs(urlsplit(link_a).query)) == {"deep_link"}
    shown_a = {i: _label_texts(a, f"compare-label-{i}") for i in range(2)}
    titles_a = [a.locator(f"#compare-label-{i} [data-testid=block-label]").inner_text() for i in range(2)]
    latency_a, agreement_a = _rows(a, "compare-latency"), _rows(a, "compare-agreement")
    assert _models_in(a, "compare-latency") == COMPARED

    # B runs again after A's link was made: A's link, made again, is the same
    b.locator("#topk input[type=number]").fill("5")
    b.locator("#topk input[type=number]").press("Enter")
    b.click("#resnet-run")
    expect(b.locator("#resnet-label .confidence-set")).to_have_count(5, timeout=MODEL_MS)
    assert _share(a) == link_a

    # a fresh visitor opening A's link sees A's session, and nothing of B's
    context_c, c = _context(browser, origin)
    _open(c, link_a)
    expect(c.locator("#share-restored")).to_contain_text("Restored from a share link")
    expect(c.locator("#shared-image img[src$='/cheetah.jpg']")).to_be_visible()
    expect(c.get_by_role("tab", name="Compare", exact=True)).to_have_attribute("aria-selected", "true")
    assert _checked(c, "compare-models-cnn") + _checked(c, "compare-models-vit") == COMPARED
    for i in range(2):
        expect(c.locator(f"#compare-label-{i} [data-testid=block-label]")).to_have_text(titles_a[i])
        assert _label_texts(c, f"compare-label-{i}") == shown_a[i]
    expect(c.locator("#compare-label-2")).to_be_hidden()
    expect(table_rows(c, "compare-latency")).to_have_count(2)
    assert _rows(c, "compare-latency") == latency_a
    assert _models_in(c, "compare-latency") == COMPARED
    assert _rows(c, "compare-agreement") == agreement_a
    assert c.locator(f"#shared-image img[src$='/{photo.name}']").count() == 0  # not B's photo
    select_tab(c, "ResNet")
    expect(c.locator("#resnet-label .confidence-set")).to_have_count(0)  # not B's result

    # B's link holds B's photo and result, none of A's
    context_d, d = _context(browser, origin)
    _open(d, link_b)
    expect(d.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
    expect(d.locator("#resnet-label .confidence-set")).to_have_count(3)
    select_tab(d, "Compare")
    expect(d.locator("#compare-label-0 .confidence-set")).to_have_count(0)

    # the plain address restores nothing
    _open(d, app_url)
    expect(d.locator("#share-restored")).to_have_text("")
    expect(d.locator("#shared-image img")).to_have_count(0)
    expect(d.locator("#resnet-label .confidence-set")).to_have_count(0)
    select_tab(d, "Compare")
    expect(d.locator("#compare-label-0 .confidence-set")).to_have_count(0)
    expect(table_rows(d, "compare-latency")).to_have_count(0)
    # a link that is not (or no longer) on the server: gradio says so, nothing is restored
    _open(d, app_url + "?deep_link=expiredLink01")
    expect(d.get_by_test_id("toast-body").first).to_contain_text("Deep link was not valid")
    expect(d.locator("#share-restored")).to_have_text("")
    expect(d.locator("#shared-image img")).to_have_count(0)
    for context in (context_a, context_b, context_c, context_d):
        context.close()
