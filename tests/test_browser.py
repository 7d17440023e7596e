"""The prompted tab in Debian's Chromium, driven by playwright."""

import shutil
import zipfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1200}, accept_downloads=True)
        pg.goto(app_url)
        pg.wait_for_selector("#prompted-run", timeout=60_000)
        yield pg
        browser.close()


def test_upload_prompt_run_overlay_and_download(page, wall_png, tmp_path):
    assert "Tiny-model mode" in page.inner_text("#tiny-banner")
    page.set_input_files("#prompted-image input[type=file]", [str(wall_png)])
    page.fill("#prompted-prompts textarea", "segment drywall seam")
    page.locator("#prompted-labels label", has_text="crack").click()
    page.click("#prompted-run")
    page.wait_for_function("document.querySelector('#prompted-status').innerText.includes('Done')", timeout=60_000)
    assert "2 mask(s) for 1 photo(s)" in page.inner_text("#prompted-status")
    assert page.locator("#prompted-view img").count() >= 1
    legend = page.inner_text("#prompted-legend")
    assert "segment crack" in legend and "segment drywall seam" in legend
    assert page.locator("#prompted-masks img").count() >= 2
    with page.expect_download(timeout=90_000) as dl:
        page.locator("#prompted-zip a").first.click()
    target = tmp_path / "masks.zip"
    dl.value.save_as(target)
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == ["wall_one__segment_crack.png", "wall_one__segment_drywall_seam.png"]


def test_bad_upload_shows_a_message(page, tmp_path):
    bad = tmp_path / "notes.png"  # a text file with an image's name: the browser sends it, SegLab refuses it
    bad.write_text("hello")
    page.goto(page.url)
    page.wait_for_selector("#prompted-run", timeout=60_000)
    page.set_input_files("#prompted-image input[type=file]", [str(bad)])
    page.fill("#prompted-prompts textarea", "segment crack")
    page.click("#prompted-run")
    page.wait_for_function("document.querySelector('#prompted-status').innerText.includes('not an image')",
                           timeout=60_000)
    assert "Traceback" not in page.inner_text("body")


def test_openvocab_tab(page, app_url, wall_png):
    page.goto(app_url)
    page.wait_for_selector("#prompted-run", timeout=60_000)
    page.get_by_role("tab", name="Open-vocabulary segmentation").click()
    page.set_input_files("#ov-image input[type=file]", [str(wall_png)])
    page.fill("#ov-classes textarea", "wall\ncrack")
    page.locator("#ov-method label", has_text="Dense: SCLIP").click()
    page.get_by_text("Dense map settings").first.click()
    page.locator("#ov-switches label", has_text="PAMR").click()
    page.click("#ov-run")
    page.wait_for_function("document.querySelector('#ov-status').innerText.includes('Done')", timeout=60_000)
    assert "pamr" in page.inner_text("#ov-status")
    assert page.locator("#ov-overlay img").count() >= 1


def _click_image_at(page, selector, x, y):
    """Click the displayed image at (x, y) in its own pixels (object-fit: contain letterboxes it)."""
    box = page.evaluate("""(sel) => { const im = document.querySelector(sel); const r = im.getBoundingClientRect();
        return [r.x, r.y, r.width, r.height, im.naturalWidth, im.naturalHeight]; }""", selector)
    bx, by, bw, bh, nw, nh = box
    s = min(bw / nw, bh / nh)
    page.mouse.click(bx + (bw - nw * s) / 2 + x * s, by + (bh - nh * s) / 2 + y * s)


def test_mhqr_query_points_can_be_inspected(page, app_url, wall_png):
    """Run MHQR on the drawn wall, see the query points, click one and a table row, see SAM2's masks."""
    from PIL import Image

    page.goto(app_url)
    page.wait_for_selector("#prompted-run", timeout=60_000)
    page.get_by_role("tab", name="Open-vocabulary segmentation").click()
    page.set_input_files("#ov-image input[type=file]", [str(wall_png)])
    page.fill("#ov-classes textarea", "wall\ncrack\nsky")
    page.locator("#ov-method label", has_text="MHQR").click()
    page.click("#ov-run")
    page.wait_for_function("document.querySelector('#ov-status').innerText.includes('Done')", timeout=120_000)
    assert "Done with MHQR" in page.inner_text("#ov-status")
    page.wait_for_selector("#ov-points img", timeout=30_000)
    assert "query points" in page.inner_text("#ov-points-note")
    cells = [page.locator(f'#ov-queries [role=gridcell][data-col="{k}"]').first.inner_text().strip()
             for k in range(6)]
    x, y = float(cells[4]), float(cells[5])
    width = Image.open(wall_png).size[0]
    natural = page.evaluate("document.querySelector('#ov-points img').naturalWidth")
    _click_image_at(page, "#ov-points img", x * natural / width, y * natural / width)
    page.wait_for_function("document.querySelector('#ov-inspect-text').innerText.includes('Query #')",
                           timeout=60_000)
    text = page.inner_text("#ov-inspect-text")
    assert f"Query #{cells[0]}:" in text
    assert cells[1] in text and "kept the" in text
    page.wait_for_selector("#ov-inspect img", timeout=30_000)
    page.locator('#ov-queries [role=gridcell][data-col="1"]').nth(2).click()
    page.wait_for_function("document.querySelector('#ov-inspect-text').innerText.includes('Query #3:')",
                           timeout=60_000)
    assert "Traceback" not in page.inner_text("body")


def test_video_tab_tracks_a_clip_and_plays_the_result(page, app_url):
    """Upload a rendered clip, track 10 frames, see the result video play and the track table fill."""
    from core.data.examples import example_clips

    page.goto(app_url)
    page.wait_for_selector("#prompted-run", timeout=60_000)
    page.get_by_role("tab", name="Video instance tracking").click()
    page.set_input_files("#vid-input input[type=file]", [str(example_clips()["shapes_crossing"])])
    page.wait_for_function("document.querySelector('#vid-info').innerText.includes('frames will be processed')",
                           timeout=60_000)
    assert "320×240" in page.inner_text("#vid-info")
    page.locator("#vid-classes textarea, #vid-classes input").first.fill("disc, square, triangle, ring")
    page.locator("#vid-settings").get_by_text("Settings").first.click()
    page.locator("#vid-size label", has_text="256").click()
    for sel, value in (("#vid-max-frames", "10"), ("#vid-new-score", "0")):
        box = page.locator(f"{sel} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.click("#vid-run")
    page.wait_for_function("document.querySelector('#vid-status').innerText.includes('Done')", timeout=180_000)
    assert "in 10 frames" in page.inner_text("#vid-status")
    page.wait_for_function("(() => { const v = document.querySelector('#vid-output video');"
                           " return v && v.readyState >= 2 && v.duration > 0; })()", timeout=60_000)
    page.evaluate("document.querySelector('#vid-output video').play()")
    page.wait_for_function("document.querySelector('#vid-output video').currentTime > 0", timeout=30_000)
    ids = [c.strip() for c in page.locator('#vid-tracks [role=gridcell][data-col="0"]').all_inner_texts() if c.strip()]
    assert ids and all(i.isdigit() for i in ids)
    page.wait_for_selector("#vid-timeline .js-plotly-plot", timeout=30_000)
    assert "Traceback" not in page.inner_text("body")
