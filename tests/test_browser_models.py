"""The Model menu in a real headless Chromium: switching to the tiny Wan 2.2 gives the page that family's rows
(frames 5-121 in steps of 4, its sizes), and a video made from the page has the family's frame rule and says
which family made it. Its own app: a switch would change the model under the other browser tests."""
from __future__ import annotations

import json
import re

import pytest

from i2v.models import by_name
from i2v.video import probe_video, sidecar_path
from tests.conftest import app_fixture
from tests.test_browser import (  # noqa: F401 - fixtures used by name
    UI_TIMEOUT_MS,
    assert_clean,
    browser,
    close_pages,
    image,
    open_advanced,
    open_page,
    set_number,
)

pytestmark = pytest.mark.browser
WAN = by_name("wan2.2-ti2v-5b")

app = app_fixture("browser-models-app")


def frames_limits(page) -> tuple[str, str, str]:
    return page.evaluate("() => { const b = document.querySelector('#i2v-frames input[type=number]');"
                         " return [b.min, b.max, b.step]; }")


def test_switching_to_tiny_wan_gives_its_rows_and_a_video_with_its_frame_rule(browser, app, image):
    page = open_page(browser, app.url)
    open_advanced(page)
    assert frames_limits(page)[1] == "64"                      # I2VGen-XL's rows first
    page.locator("#i2v-model input").click()
    page.get_by_role("option", name=re.compile(re.escape(WAN.title))).first.click()
    page.wait_for_function("() => document.querySelector('#i2v-frames input[type=number]').max == '121'")
    assert frames_limits(page) == ["5", "121", "4"]
    page.locator("#i2v-image input[type=file]").set_input_files(str(image))
    page.locator("#i2v-image img").first.wait_for()
    page.locator("#i2v-prompt textarea").fill("a boat on a lake")
    page.locator("#i2v-resolution input").click()
    page.get_by_role("option", name="256", exact=True).click()
    set_number(page, "i2v-frames", 9)
    set_number(page, "i2v-steps", 2)
    page.wait_for_function("() => document.querySelector('#i2v-frames input[type=number]').value == '9'"
                           " && document.querySelector('#i2v-steps input[type=number]').value == '2'")
    before = set(app.outputs.glob("*.mp4")) if app.outputs.exists() else set()
    page.locator("#i2v-generate").click()
    page.locator("#i2v-video video").wait_for(timeout=UI_TIMEOUT_MS)
    page.wait_for_function("() => { const v = document.querySelector('#i2v-video video');"
                           " return v && v.readyState >= 1 && v.duration > 0; }")    # playable in the browser
    new = set(app.outputs.glob("*.mp4")) - before
    assert len(new) == 1, new
    video = new.pop()
    info = probe_video(video)
    assert info.frames == 9 and (info.frames - 1) % 4 == 0 and info.width % 32 == 0 and info.height % 32 == 0
    sidecar = json.loads(sidecar_path(video).read_text())
    assert sidecar["family"] == WAN.name and sidecar["parameters"]["num_frames"] == 9
    assert_clean(page)
