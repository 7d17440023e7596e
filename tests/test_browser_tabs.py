"""Every tab as a first-time visitor meets it, in Debian's Chromium at 1400 px and 420 px (a phone): the first example
clicked gives a result, the visitor's input stays visible next to it, the page never scrolls sideways; with one
model's weights missing, its tab says so at page load (before any click) and the other tabs still run. Screenshots
of each tab at both widths go to a pytest temporary folder (`tab-screenshots*`), never into the repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import start_app, stop_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
WAIT = 180_000  # tiny models on a loaded machine: generous waits, nothing asserted about time

TABS = {
    "prompted": dict(name="Prompted segmentation (drywall QA)", examples="#prompted-examples",
                     status="#prompted-status", input="#prompted-image img", result="#prompted-view img",
                     models="#prompted-models"),
    "openvocab": dict(name="Open-vocabulary segmentation", examples="#ov-examples", status="#ov-status",
                      input="#ov-image img", result="#ov-overlay img", models="#ov-models"),
    "video": dict(name="Video instance tracking", examples="#vid-examples", status="#vid-status",
                  input="#vid-input video", result="#vid-output video", models="#vid-models"),
}


@pytest.fixture(scope="module")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("tab-screenshots")


def open_tab(browser, url, tab, width):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#prompted-run", timeout=WAIT)
    name = TABS[tab]["name"]
    button = page.get_by_role("tab", name=name)
    if button.is_visible():
        button.click()
    else:  # narrow: Gradio folds the tabs that do not fit into its "…" menu
        page.locator(".overflow-menu button").first.click()
        page.locator(".overflow-dropdown button", has_text=name).click()
    page.wait_for_selector(TABS[tab]["examples"], timeout=WAIT)
    return page


def sideways_scroll(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def visible(page, selector) -> bool:
    return page.evaluate("""(sel) => { const el = document.querySelector(sel); if (!el) return false;
        const r = el.getBoundingClientRect(); return r.width > 20 && r.height > 20; }""", selector)


@pytest.mark.parametrize("width", [1400, 420])
@pytest.mark.parametrize("tab", list(TABS))
def test_the_first_example_gives_a_result_beside_the_visible_input(browser, app_url, shots, tab, width):
    t = TABS[tab]
    page = open_tab(browser, app_url, tab, width)
    page.wait_for_function(f"document.querySelector('{t['models']}').innerText.includes('Models:')", timeout=WAIT)
    assert "tiny random weights" in page.inner_text(t["models"])  # said at page load, before any click
    page.locator(f"{t['examples']} tbody tr, {t['examples']} button.gallery-item").first.click()
    page.wait_for_function(f"document.querySelector('{t['status']}').innerText.includes('Done')", timeout=WAIT)
    page.wait_for_selector(t["result"], timeout=WAIT)
    assert visible(page, t["input"]), "the visitor's input is no longer shown"
    assert visible(page, t["result"])
    assert sideways_scroll(page) <= 1, "the page scrolls sideways"
    assert "Traceback" not in page.inner_text("body") and "Error" not in page.inner_text(t["status"])
    page.screenshot(path=str(shots / f"{tab}-{width}.png"), full_page=True)
    page.close()


def test_missing_weights_are_shown_at_page_load_and_the_other_tabs_run(browser, tmp_path):
    empty = tmp_path / "empty-clipseg"
    empty.mkdir()
    proc, url, fh = start_app(tmp_path, SEGLAB_CLIPSEG=str(empty))
    try:
        page = open_tab(browser, url, "prompted", 1400)
        page.wait_for_function("document.querySelector('#prompted-models').innerText.includes('Model missing')",
                               timeout=WAIT)
        notice = page.inner_text("#prompted-models")
        assert "SEGLAB_CLIPSEG" in notice and str(empty) in notice and "save_pretrained" in notice
        assert page.inner_text("#prompted-status").strip() == ""  # nothing was clicked
        page.close()
        page = open_tab(browser, url, "openvocab", 1400)
        assert "Model missing" not in page.inner_text("#ov-models")
        page.locator("#ov-examples tbody tr, #ov-examples button.gallery-item").first.click()
        page.wait_for_function("document.querySelector('#ov-status').innerText.includes('Done')", timeout=WAIT)
        page.close()
    finally:
        stop_app(proc, fh)
