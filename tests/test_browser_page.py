"""The page in headless Chromium at a laptop, a projector and a phone size (issue 9, items 8, 10, 11, 13).

Every request the page makes is recorded: any host other than the server fails the test (no Google
Fonts, CDN scripts or analytics). Screenshots go to test-output/screenshots/page-*.png.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.test_browser import SCREENSHOTS, UI_MS, browser  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.browser

SIZES = {"laptop": (1280, 800), "projector": (1920, 1080), "phone": (390, 844)}


@pytest.mark.parametrize("size", list(SIZES))
def test_page_at_each_size(browser, app_url, photo, tmp_path, size):  # noqa: F811
    from playwright.sync_api import expect

    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.goto(app_url + "?presenter=1" if size == "projector" else app_url)
    expect(page.get_by_role("heading", name="Image classifier dashboard")).to_be_visible()
    # item 8: a file that is not an image is flagged on upload, before any Classify
    fake = tmp_path / "notes.jpg"
    fake.write_bytes(b"%PDF-1.4 this is not an image")
    page.locator("#shared-image input[type=file]").set_input_files(str(fake))
    toast = page.get_by_test_id("toast-body").first
    expect(toast).to_be_visible()
    expect(toast).to_have_class(re.compile(r"\berror\b"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"page-{size}-upload-refused.png"))
    page.goto(app_url + "?presenter=1" if size == "projector" else app_url)
    expect(page.get_by_role("heading", name="Image classifier dashboard")).to_be_visible()
    page.locator("#shared-image input[type=file]").set_input_files(str(photo))
    expect(page.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
    page.wait_for_timeout(1000)  # not "networkidle": the heartbeat request of a page with State never ends
    page.screenshot(path=str(SCREENSHOTS / f"page-{size}.png"))

    # item 13: only the server itself is ever asked for anything
    server = urlsplit(app_url).netloc
    assert hosts - {server} == set(), f"requests to other hosts: {sorted(hosts - {server})}"

    image_box = page.locator("#shared-image").bounding_box()
    tabs_box = page.get_by_role("tab", name="ResNet").bounding_box()
    if size == "phone":  # stacked: the tabs below the image, nothing wider than the screen
        assert tabs_box["y"] > image_box["y"] + image_box["height"] - 1
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
    else:  # side by side: image on the left, tabs on the right, both in the first screen
        assert tabs_box["x"] > image_box["x"] + image_box["width"] - 1
        assert tabs_box["y"] < height and image_box["y"] < height
    presenter = page.evaluate("document.body.classList.contains('presenter')")
    assert presenter == (size == "projector")
    # the Label's title is large and dark; presenter mode enlarges it and the body text further
    title_px = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                             "'#resnet-label [data-testid=block-label]')).fontSize)")
    body_px = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                            "'#resnet-explain')).fontSize)")
    assert title_px >= (24 if presenter else 16), title_px
    assert body_px >= 20 if presenter else body_px < 20, body_px

    assert hosts - {server} == set()
    context.close()


def test_what_the_model_sees_on_request_and_cleared_by_a_new_image(browser, app_url, photo):  # noqa: F811
    """Item 9: opening the accordion shows the model's 224x224 input; a new image clears it."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    page.goto(app_url)
    page.locator("#shared-image input[type=file]").set_input_files(str(photo))
    expect(page.locator(f"#shared-image img[src$='/{photo.name}']")).to_be_visible()
    page.locator("#resnet-view").get_by_text("What the model sees").click()
    view = page.locator("#resnet-view-image img")
    expect(view).to_be_visible()
    assert page.evaluate("(img) => [img.naturalWidth, img.naturalHeight]", view.element_handle()) == [224, 224]
    expect(page.locator("#resnet-view-caption")).to_contain_text("ResNet-18 is given this 224×224 image")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "model-view-resnet.png"), full_page=True)
    other = photo.with_name("coffee.jpg")
    page.locator("#shared-image input[type=file]").set_input_files(str(other))
    expect(page.locator(f"#shared-image img[src$='/{other.name}']")).to_be_visible()
    expect(view).to_have_count(0)
    expect(page.locator("#resnet-view-caption")).not_to_contain_text("224×224")
    context.close()
