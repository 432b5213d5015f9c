"""The live preview in a real headless Chromium against the tiny app (English and Chinese): with a preview after
every step, the strip appears above the video while a long run denoises, labelled in the page's language, and
leaves when the video arrives; with 0 (off) no strip shows during the run."""
from __future__ import annotations

import pytest

from tests.conftest import app_fixture, make_image
from tests.test_browser import (  # noqa: F401 - browser and close_pages are fixtures used here
    LOCALES, UI_TIMEOUT_MS, assert_clean, browser, close_pages, fill_form, label, lang_of, open_page,
    progress_pattern, set_number, shot, wait_for_progress)

pytestmark = pytest.mark.browser

app = app_fixture("browser-preview-app")
STEPS = 16      # a few seconds of denoising on the tiny model: strips arrive (one after every step) before the video


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return make_image(tmp_path_factory.mktemp("preview-img") / "input.png", 320, 240)


def preview_shown(page) -> bool:
    return page.evaluate("() => { const img = document.querySelector('#i2v-live-preview img');"
                         " return !!img && !!img.getAttribute('src') && img.offsetParent !== null; }")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_preview_appears_during_a_run_and_leaves_with_the_video(browser, app, image, locale):
    page = open_page(browser, app.url, locale=locale)
    fill_form(page, image, "slow", frames=3, steps=STEPS, locale=locale)
    set_number(page, "i2v-preview-every", 1)
    page.locator("#i2v-generate").click()
    strip = page.locator("#i2v-live-preview img")
    strip.wait_for(state="visible", timeout=UI_TIMEOUT_MS)
    first = strip.get_attribute("src")
    assert first and preview_shown(page)
    assert label(locale, "live_preview") in page.locator("#i2v-live-preview").inner_text()
    # the strip follows the run: a newer one replaces it while denoising goes on
    page.wait_for_function("(old) => { const img = document.querySelector('#i2v-live-preview img');"
                           " return img && img.getAttribute('src') && img.getAttribute('src') != old; }", arg=first)
    shot(page, f"{lang_of(locale)}-live-preview")
    page.locator("#i2v-video video").wait_for(timeout=UI_TIMEOUT_MS)
    page.locator("#i2v-live-preview").wait_for(state="hidden", timeout=30_000)
    assert not preview_shown(page)
    assert_clean(page)


def test_off_shows_no_preview(browser, app, image):
    page = open_page(browser, app.url)
    fill_form(page, image, "slow", frames=3, steps=8)
    set_number(page, "i2v-preview-every", 0)
    page.locator("#i2v-generate").click()
    wait_for_progress(page, progress_pattern("en-US", r"([3-9]|\d\d+)"))
    assert not preview_shown(page)
    page.locator("#i2v-video video").wait_for(timeout=UI_TIMEOUT_MS)
    assert not preview_shown(page)
