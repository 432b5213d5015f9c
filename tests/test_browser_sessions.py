"""Several browser tabs on one app, in a real headless Chromium: a waiting job shows its place in the queue
(in English and in a Chinese tab); Stop in one tab ends only that tab's job, whether running or still waiting
(a waiting one leaves the queue, so the job behind it runs next)."""
from __future__ import annotations

import re

import pytest

from tests.conftest import app_fixture
from tests.hostile_inputs import GOOD_VALUES, write_images
from tests.test_browser import UI_TIMEOUT_MS, assert_clean, browser, open_page  # noqa: F401 - browser: a fixture
from tests.test_browser_hostile import fill

pytestmark = pytest.mark.browser

LONG = {**GOOD_VALUES, "num_inference_steps": 150}
QUEUE_PLACE = re.compile(r"(?:queue|队列|排队)\D{0,4}(\d+)\s*/\s*(\d+)")   # a Chinese tab: 排队：2/2 (i2v/ui/lang_js.py)
RUNNING = re.compile(r"(\d+)\s*/\s*150\s*(?:steps|步)")      # the unit is in the tab's language


app = app_fixture("sessions-app")


def video_box(tab) -> str:
    return tab.locator("#i2v-video").inner_text()


def wait_for(tab, pattern: re.Pattern) -> re.Match:
    tab.wait_for_function("(source) => new RegExp(source).test(document.querySelector('#i2v-video').innerText)",
                          arg=pattern.pattern, timeout=UI_TIMEOUT_MS)
    return pattern.search(video_box(tab))


def test_waiting_jobs_show_their_place_and_stop_ends_only_my_job(browser, app, tmp_path):
    images = write_images(tmp_path)
    tabs = [open_page(browser, app.url), open_page(browser, app.url), open_page(browser, app.url, "zh-CN")]
    try:
        for tab in tabs:
            fill(tab, images["good"], LONG)
        first, second, third = tabs
        first.locator("#i2v-generate").click()
        wait_for(first, RUNNING)
        second.locator("#i2v-generate").click()
        assert wait_for(second, QUEUE_PLACE).group(1) == "1"          # next in line
        third.locator("#i2v-generate").click()                       # the Chinese tab: the same line
        assert wait_for(third, QUEUE_PLACE).group(1) == "2"           # behind the second tab's job
        # Stop in the second tab ends its waiting job only: the first keeps denoising
        steps_before = int(wait_for(first, RUNNING).group(1))
        second.locator("#i2v-stop").click()
        second.wait_for_function("() => !/queue/.test(document.querySelector('#i2v-video').innerText)",
                                 timeout=UI_TIMEOUT_MS)
        first.wait_for_function(f"() => {{ const m = document.querySelector('#i2v-video').innerText"
                                f".match(/(\\d+)\\s*\\/\\s*150 steps/); return m && +m[1] > {steps_before}; }}",
                                timeout=UI_TIMEOUT_MS)
        second.locator("#i2v-stop-message").get_by_text("queue").wait_for()
        # when the first job ends, the third tab's job runs next: the second one is really gone from the line
        first.locator("#i2v-stop").click()
        first.get_by_text("Stopped").first.wait_for(timeout=UI_TIMEOUT_MS)
        wait_for(third, RUNNING)
        assert not RUNNING.search(video_box(second)) and not QUEUE_PLACE.search(video_box(second))
        third.locator("#i2v-stop").click()
        third.locator("#i2v-notice").get_by_text("未保存", exact=False).wait_for(timeout=UI_TIMEOUT_MS)
        for tab in tabs:
            assert_clean(tab)
    finally:
        for tab in tabs:
            tab.close()


def queue_text(tab) -> str:
    return tab.locator("#i2v-queue").inner_text()


def open_queue(tab) -> None:
    tab.locator("#i2v-queue-box .label-wrap").first.click()       # the accordion, in any language
    tab.locator("#i2v-queue").wait_for()


def test_a_closed_tabs_job_ends_and_the_queue_panel_cancels_with_a_confirmation(browser, app, tmp_path):
    """Close the tab mid-run: its job ends and the next tab's job runs; the queue panel shows whose each job is;
    on this loopback app without a login, another tab's job is cancelled after a confirmation."""
    images = write_images(tmp_path)
    leaving, staying, other = (open_page(browser, app.url) for _ in range(3))
    try:
        for tab in (leaving, staying, other):
            fill(tab, images["good"], LONG)
        leaving.locator("#i2v-generate").click()
        wait_for(leaving, RUNNING)
        open_queue(staying)
        staying.wait_for_function("() => /running · another tab/.test(document.querySelector('#i2v-queue')"
                                  ".innerText)", timeout=UI_TIMEOUT_MS)
        assert "joins the queue: 1 ahead" in staying.locator("#i2v-generate").inner_text()
        leaving.close()                                     # mid-run: nobody can Stop it any more
        staying.wait_for_function("() => /No job is running/.test(document.querySelector('#i2v-queue').innerText)",
                                  timeout=UI_TIMEOUT_MS)
        staying.wait_for_function("() => document.querySelector('#i2v-generate').innerText.trim() === 'Generate'",
                                  timeout=UI_TIMEOUT_MS)     # the button says a click no longer waits
        staying.locator("#i2v-generate").click()            # the next tab's job starts at once
        wait_for(staying, RUNNING)
        staying.wait_for_function("() => /running · you/.test(document.querySelector('#i2v-queue').innerText)",
                                  timeout=UI_TIMEOUT_MS)
        # another tab cancels it from its queue panel, after saying yes
        open_queue(other)
        other.wait_for_function("() => /running · another tab/.test(document.querySelector('#i2v-queue')"
                                ".innerText)", timeout=UI_TIMEOUT_MS)
        other.locator("#i2v-queue-cancel").click()
        other.locator("#i2v-queue-confirm").wait_for(timeout=UI_TIMEOUT_MS)
        assert RUNNING.search(video_box(staying)), "nothing is cancelled before the confirmation"
        other.locator("#i2v-queue-confirm").click()
        other.locator("#i2v-queue-message").get_by_text("The job was cancelled").wait_for(timeout=UI_TIMEOUT_MS)
        staying.get_by_text("Stopped").first.wait_for(timeout=UI_TIMEOUT_MS)
        for tab in (staying, other):
            assert_clean(tab)
    finally:
        for tab in (leaving, staying, other):
            if not tab.is_closed():
                tab.close()
