"""The dashboard in Debian's Chromium at 1400 px and 420 px (a phone), driven by playwright: the leaderboard without
horizontal scrolling of the page, chart tabs only where there is data, the runs table's filters, sort and CSV, and a
comparison link with its deltas coloured by each metric's direction. Screenshots of both widths go to a pytest
temporary folder (`dashboard-screenshots*`), never into the repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPORTED_RUNS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

GREEN, RED = "rgb(19, 115, 51)", "rgb(179, 38, 30)"  # core.results.views.GOOD / BAD
WAIT = 90_000  # a loaded machine: waits are generous, and nothing is asserted about time


@pytest.fixture(scope="module")
def browser(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("dashboard-screenshots")


def open_dashboard(browser, app_url, width, query=""):
    page = browser.new_page(viewport={"width": width, "height": 1000}, accept_downloads=True)
    page.goto(app_url + query)
    # the app opens on the prompted tab; a link switches to the dashboard as soon as it loads
    page.wait_for_selector("#prompted-run", state="attached" if query else "visible", timeout=WAIT)
    if not query:
        tab = page.get_by_role("tab", name="Dashboard")
        if tab.is_visible():
            tab.click()
        else:  # narrow: Gradio folds the tabs that do not fit into its "…" menu
            page.locator(".overflow-menu button").first.click()
            page.locator(".overflow-dropdown button", has_text="Dashboard").click()
    page.wait_for_function("document.querySelector('#lb-summary') && "  # loaded, and not re-rendering
                           "document.querySelector('#lb-summary').innerText.startsWith('Best')", timeout=WAIT)
    return page


def chart_tabs(page):
    return [t.inner_text() for t in page.locator("#lb-charts [role=tab]").all() if t.is_visible()] + [
        t.inner_text() for t in page.locator("#lb-charts .overflow-dropdown button").all()]


def no_page_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def box(page, selector):
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("width", [1400, 420])
def test_leaderboard_fits_the_page(browser, app_url, shots, width):
    page = open_dashboard(browser, app_url, width)
    assert page.inner_text("#lb-summary").startswith(
        "Best mIoU on COCO-Stuff-164k: CorrCLIP, SAM2 masks (8 points per side), 31.8 (reported)")
    assert no_page_scroll(page)
    table = box(page, "#lb-table")
    assert table["x"] >= 0 and table["x"] + table["width"] <= width
    for header in ("#", "method", "mIoU"):  # rank, method and the metric in view, not behind a scroll
        cell = page.locator("#lb-table th", has_text=header).first.bounding_box()
        assert cell["x"] >= 0 and cell["x"] + cell["width"] <= width, header
    first = page.locator('#lb-table [role=gridcell][data-col="1"]').first.inner_text()
    assert first.startswith("CorrCLIP, SAM2 masks")
    assert chart_tabs(page) == ["Per run"]  # the published open-vocabulary rows have no speed, breakdown or curves
    page.wait_for_selector("#lb-plot-run .main-svg", timeout=WAIT)
    plot = page.evaluate("document.querySelector('#lb-plot-run .main-svg').getBoundingClientRect().width")
    assert plot <= width - 20 and plot >= box(page, "#lb-plot-run")["width"] - 20  # the container's width
    page.locator("#lb-table").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"leaderboard_{width}.png"), full_page=True)

    page.locator("#lb-task label", has_text="prompted").click()
    page.wait_for_function("document.querySelector('#lb-summary').innerText.startsWith('Best mIoU on drywall')",
                           timeout=WAIT)  # not while it says 'processing' above
    assert page.inner_text("#lb-summary").startswith("Best mIoU on drywall (crack + taping_area): CLIPSeg ft e16 @512")
    page.wait_for_function("[...document.querySelectorAll('#lb-charts [role=tab]')].length >= 4", timeout=WAIT)
    assert sorted(chart_tabs(page)) == ["Breakdown", "Per run", "Speed", "Threshold"]  # no training curves here
    assert no_page_scroll(page)
    page.screenshot(path=str(shots / f"leaderboard_prompted_{width}.png"), full_page=True)
    page.close()


def _table_methods(page):
    return [c.strip() for c in page.locator('#dash-table [role=gridcell][data-col="0"]').all_inner_texts() if c.strip()]


def test_runs_table_filter_sort_and_csv(browser, app_url, tmp_path):
    page = open_dashboard(browser, app_url, 1400)
    total = REPORTED_RUNS + 2
    page.wait_for_function("document.querySelector('#dash-status').innerText.includes('runs shown')", timeout=WAIT)
    status = page.inner_text("#dash-status")
    assert f"{total} of {total} runs shown (2 measured, {REPORTED_RUNS} reported" in status
    assert "broken.json" in status  # the malformed file is named, the rest still shows
    page.locator("#dash-provenance label", has_text="measured").click()
    page.wait_for_function(f"document.querySelector('#dash-status').innerText.includes('2 of {total}')", timeout=WAIT)
    page.locator("#dash-sort input").click()
    page.locator('[role=option][aria-label="mIoU"]').click()
    page.locator("#dash-descending label").click()
    page.wait_for_function("document.querySelector('#dash-status').innerText.includes('sorted by mIoU, descending')",
                           timeout=WAIT)
    methods = _table_methods(page)
    assert [m.split(" · ")[-1] for m in methods] == ["fixture_measured_b", "fixture_measured_a"]  # 35.0 before 30.0
    status = page.inner_text("#dash-status")
    with page.expect_download(timeout=WAIT) as dl:
        page.click("#dash-export")
        page.wait_for_selector("#dash-csv a", timeout=WAIT)
        page.locator("#dash-csv a").first.click()
    target = tmp_path / "runs.csv"
    dl.value.save_as(target)
    df = pd.read_csv(target)
    assert list(df["name"]) == ["fixture_measured_b", "fixture_measured_a"]  # the table's filters and order
    assert "Exported 2 runs, sorted by mIoU descending" in page.inner_text("#dash-export-note")
    assert page.inner_text("#dash-status") == status  # the status line stays
    page.close()


@pytest.mark.parametrize("width", [1400, 420])
def test_comparison_link_colours_deltas_by_direction(browser, app_url, shots, width):
    page = open_dashboard(browser, app_url, width, "?compare=runs/fixture_measured_a,runs/fixture_measured_b")
    page.wait_for_function("document.querySelector('#dash-compare-text').innerText.includes('shared metrics')",
                           timeout=WAIT)
    assert "measured by SegLab" in page.inner_text("#dash-compare-text")
    colours = page.evaluate("""() => {  // overall and timing come first, so the table need not scroll
        const out = {};
        for (const row of document.querySelectorAll('#dash-compare .virtual-row')) {
            const cells = [...row.querySelectorAll('[role=gridcell]')];
            if (cells.length < 6) continue;
            const text = cells.map(c => c.innerText.trim());
            const span = cells[4].querySelector('span') || cells[4];
            out[text[0] + ' / ' + text[1]] = [text[4], getComputedStyle(span).color, text[5]];
        }
        return out; }""")
    assert colours["overall / mIoU %"] == ["+5.00", GREEN, "better"]  # B has the higher mIoU
    assert colours["timing / s / image"] == ["+0.2", RED, "worse"]  # B is slower: worse, though the delta is positive
    delta = page.locator("#dash-compare th", has_text="B − A").first.bounding_box()
    assert delta["x"] + delta["width"] <= width  # the coloured column in view on a phone too
    assert no_page_scroll(page)
    page.locator("#dash-compare").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"compare_{width}.png"))
    page.close()
