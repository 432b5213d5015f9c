"""The hostile-input matrix (tests/hostile_inputs.py) through the page, in a real headless Chromium: every case a
browser can send is answered on the page with a message naming the field, or with a video (its conversions
reported in the info box); no traceback or exception name ever shows; afterwards the page still generates.

A browser cannot send every case: an `<input type=number>` holds no text, NaN or Infinity, and the resolution
dropdown offers only the listed sizes. Those cases go through the raw API and the CLI in
tests/test_hostile_inputs.py; here the page's own number boxes get the out-of-range values a user can type. A
slider's box pulls a value beyond its range back to the nearest end, in plain sight: that run must succeed with
the value the box shows (the API and CLI, which have no box, refuse the same value with a field message).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from i2v.core.settings import SETTINGS_BY_NAME
from i2v.ui.format import local_time
from tests.hostile_inputs import CASES, GOOD_VALUES, write_images
from tests.conftest import app_fixture
from tests.test_browser import (UI_TIMEOUT_MS, assert_clean, browser, info_text, open_page,  # noqa: F401 - a fixture
                                wait_for_progress)

pytestmark = pytest.mark.browser

NUMBER_BOXES = {"num_frames": "i2v-frames", "fps": "i2v-fps", "num_inference_steps": "i2v-steps",
                "guidance_scale": "i2v-guidance", "seed": "i2v-seed"}
TEXT_BOXES = {"prompt": "i2v-prompt", "negative_prompt": "i2v-negative_prompt"}


def page_can_send(case) -> bool:
    for name, value in case.values.items():
        if name in TEXT_BOXES:
            if not isinstance(value, str) or value.encode("utf-8", "surrogatepass").decode("utf-8", "ignore") != value:
                return False           # an object, or a lone surrogate: only a script sends those (API tests)
            continue
        if name not in NUMBER_BOXES or isinstance(value, str) or value != value or value in (float("inf"),
                                                                                              float("-inf")):
            return False
    return True


PAGE_CASES = [case for case in CASES if page_can_send(case)]
SLIDERS = ("num_frames", "fps", "num_inference_steps", "guidance_scale")


def slider_clamp(case) -> dict:
    """The values a slider box pulls back into its range: {name: value shown}."""
    clamped = {}
    for name, value in case.values.items():
        setting = SETTINGS_BY_NAME[name]
        if name in SLIDERS and not setting.minimum <= value <= setting.maximum:
            clamped[name] = min(max(value, setting.minimum), setting.maximum)
    return clamped


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("hostile-page"))


page_app = app_fixture("hostile-page-app")


@pytest.fixture(scope="module")
def page(browser, page_app):
    return lambda: open_page(browser, page_app.url)


def type_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def fill(page, image, values: dict) -> None:
    page.locator("#i2v-image input[type=file]").set_input_files(str(image))
    page.locator("#i2v-image img").first.wait_for()
    if not page.locator("#i2v-frames input[type=number]").is_visible():
        page.locator("#i2v-advanced .label-wrap").first.click()     # the accordion, in any language
    page.locator("#i2v-frames input[type=number]").wait_for()    # its content is drawn once it opens
    for name, elem_id in TEXT_BOXES.items():       # the negative prompt lives in the accordion
        box = page.locator(f"#{elem_id} textarea")
        box.fill(values[name])
        page.wait_for_function("([id, v]) => document.querySelector(`#${id} textarea`).value === v",
                               arg=[elem_id, values[name]])
    page.locator("#i2v-resolution input").click()
    page.get_by_role("option", name=str(values["resolution"]), exact=True).click()
    for name, elem_id in NUMBER_BOXES.items():
        type_number(page, elem_id, values[name])


def outcome(page) -> str:
    """'error: <message>' from the notice line, or 'video: <info>' once the new video shows."""
    page.wait_for_function(
        "() => { const n = document.querySelector('#i2v-notice .prose');"
        " const v = document.querySelector('#i2v-video video');"
        " return (n && n.innerText.trim().length > 0) || (v && v.getAttribute('src')); }", timeout=UI_TIMEOUT_MS)
    video = page.locator("#i2v-video video")
    if video.count() and video.get_attribute("src"):
        return "video: " + info_text(page)
    return "error: " + page.locator("#i2v-notice .prose").first.inner_text()


@pytest.mark.parametrize("case", PAGE_CASES, ids=[c.name for c in PAGE_CASES])
def test_page_answers_every_hostile_input_a_browser_can_send(page, page_app, images, case):
    tab = page()
    try:
        fill(tab, images[case.image], {**GOOD_VALUES, **case.values})
        tab.locator("#i2v-generate").click()
        clamped = slider_clamp(case)
        if "num_inference_steps" in clamped:
            # the most steps the slider allows: the run shows that count, then Stop ends it (its length
            # depends on the machine's load, which no assertion may)
            steps = clamped["num_inference_steps"]
            wait_for_progress(tab, rf"\d+\s*/\s*{steps:g}\s*steps")
            tab.locator("#i2v-stop").click()
            tab.locator("#i2v-notice").get_by_text("Stopped").wait_for()
            shown = tab.locator(f"#{NUMBER_BOXES['num_inference_steps']} input[type=number]").first.input_value()
            assert float(shown) == steps, shown
            assert_clean(tab)
            return
        answer = outcome(tab)
        if clamped:
            assert answer.startswith("video: "), answer
            for name, value in clamped.items():
                shown = tab.locator(f"#{NUMBER_BOXES[name]} input[type=number]").first.input_value()
                assert float(shown) == value, (name, shown)
                assert re.search(rf'"{name}"\s*:\s*{value:g}\b', answer), answer
        elif case.error_label:
            assert answer.startswith("error: ") and case.error_label in answer, answer
        else:
            assert answer.startswith("video: "), answer
            if case.note:
                assert case.note in answer, answer
        assert_clean(tab)
    finally:
        tab.close()


def test_the_page_still_generates_after_the_matrix_and_a_deleted_video_is_gone(page, page_app, images):
    tab = page()
    try:
        fill(tab, images["good"], GOOD_VALUES)
        tab.locator("#i2v-generate").click()
        assert outcome(tab).startswith("video: ")
        assert re.search(r"seed", info_text(tab))
        # the page plays Gradio's cached copy; deleting the video in History must make that URL go too
        src = tab.locator("#i2v-video video").get_attribute("src")
        newest = max(page_app.outputs.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
        assert newest.name in src and tab.request.get(src).status == 200
        tab.get_by_role("tab", name="History").click()
        tab.locator("#i2v-history input").click()
        created = local_time(json.loads(newest.with_suffix(".json").read_text())["created"], seconds=True)
        tab.get_by_role("option", name=re.compile(re.escape(created))).click()
        tab.locator("#i2v-delete").click()
        tab.locator("#i2v-confirm-delete").click()
        tab.locator("#i2v-history-message").get_by_text("Deleted").wait_for()
        assert not newest.exists() and not newest.with_suffix(".json").exists()
        cached = Path(src.split("file=", 1)[1])
        assert not cached.exists(), cached          # Gradio's copy is gone, and with it the URL
        assert tab.request.get(src).status in (403, 404)
        assert_clean(tab)
    finally:
        tab.close()
