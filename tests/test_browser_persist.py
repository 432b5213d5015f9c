"""What the page remembers, in a real headless Chromium, English and Chinese: the prompt, the negative prompt,
the sliders and the preset survive a reload of the same browser (localStorage via gr.BrowserState), a fresh
browser starts from the defaults, and "Reset to defaults" forgets them. The prompt is marked required before
Generate is pressed."""
from __future__ import annotations

import pytest

from i2v.core.settings import SETTINGS_BY_NAME
from tests.conftest import app_fixture
from tests.test_browser import LOCALES, UI_TIMEOUT_MS, browser, label, open_advanced, set_number  # noqa: F401

pytestmark = pytest.mark.browser

app = app_fixture("persist-app")
PROMPT = "a red kite over the sea"
NEGATIVE = "blurry, text"


def loaded(context, url):
    """A page of this browser context, once the load chain (defaults, presets, then the memory) has run."""
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(url)
    page.locator("#i2v-generate").wait_for()
    page.wait_for_function("() => document.querySelector('#i2v-preset input')?.value")   # presets filled in
    open_advanced(page)          # the sliders are drawn once Advanced is open
    return page


def saved(page, change) -> None:
    """Make a change and wait until the browser's store was written after it."""
    old = page.evaluate("() => localStorage.getItem('i2v-settings')")
    change()
    page.wait_for_function("(old) => localStorage.getItem('i2v-settings') !== old", arg=old)


def values(page) -> dict:
    return page.evaluate("""() => ({
        prompt: document.querySelector('#i2v-prompt textarea').value,
        negative: document.querySelector('#i2v-negative_prompt textarea').value,
        steps: document.querySelector('#i2v-steps input[type=number]').value,
        preset: document.querySelector('#i2v-preset input').value})""")


@pytest.mark.parametrize("locale", LOCALES)
def test_settings_survive_a_reload_and_reset_forgets_them(browser, app, locale):
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    try:
        page = loaded(context, app.url)
        prompt = page.locator("#i2v-prompt textarea")
        # marked required before Generate is pressed
        assert prompt.evaluate("e => e.required && e.getAttribute('aria-required') === 'true'")
        default_steps = page.locator("#i2v-steps input[type=number]").input_value()
        steps = "7" if default_steps != "7" else "9"
        # each change is stored after a round trip (encrypted, a new text each time): wait for each write
        saved(page, lambda: (prompt.fill(PROMPT), prompt.blur()))     # typed text is kept when the box is left
        negative = page.locator("#i2v-negative_prompt textarea")
        saved(page, lambda: (negative.fill(NEGATIVE), negative.blur()))
        saved(page, lambda: set_number(page, "i2v-steps", steps))
        before = values(page)
        assert before["steps"] == steps
        page.reload()
        page.locator("#i2v-generate").wait_for()
        page.wait_for_function("(p) => document.querySelector('#i2v-prompt textarea').value === p", arg=PROMPT)
        open_advanced(page)
        page.wait_for_function(
            "(s) => document.querySelector('#i2v-steps input[type=number]').value === s", arg=steps)
        after = values(page)
        assert after["negative"] == NEGATIVE and after["preset"] == before["preset"], (before, after)

        # another browser (a fresh context: its own localStorage) starts from the defaults
        other = browser.new_context(locale=locale)
        try:
            fresh = loaded(other, app.url)
            assert values(fresh)["prompt"] == SETTINGS_BY_NAME["prompt"].default
        finally:
            other.close()

        page.get_by_role("button", name=label(locale, "reset_settings"), exact=True).click()
        page.wait_for_function(
            "(d) => document.querySelector('#i2v-steps input[type=number]').value === d", arg=default_steps)
        page.wait_for_function("(p) => document.querySelector('#i2v-prompt textarea').value === p",
                               arg=SETTINGS_BY_NAME["prompt"].default)
        page.close()
        page = loaded(context, app.url)
        assert values(page)["prompt"] == SETTINGS_BY_NAME["prompt"].default
    finally:
        context.close()


def test_reuse_restores_every_setting_with_the_seed_that_made_the_video(tmp_path):
    """A1111's Reuse: the seed comes back too (Generate repeats the video) and the notice names it, both
    languages; a sidecar's seed that the table refuses leaves the seed random."""
    from i2v.core.words import render
    from tests.test_ui import FakeRequest, HistoryService, handlers

    fns = handlers(HistoryService(tmp_path, None))
    names = [s.name for s in __import__("i2v.core.settings", fromlist=["SETTINGS"]).SETTINGS]
    for lang in ("en-US", "zh-CN"):
        out = fns["reuse"]("/out/video_1.mp4", FakeRequest(lang))
        assert out[1 + names.index("seed")]["value"] == 99 and out[1 + names.index("num_frames")]["value"] == 4
        assert out[-2] == render("reused", "zh" if lang.startswith("zh") else "en", seed=99)

    class BadSeed(HistoryService):
        def history(self):
            return [{**super().history()[0], "seed": "99; rm -rf"}]

    out = handlers(BadSeed(tmp_path, None))["reuse"]("/out/video_1.mp4", FakeRequest())
    assert out[1 + names.index("seed")]["value"] == SETTINGS_BY_NAME["seed"].default


def test_a_stored_value_the_table_refuses_is_never_applied():
    """The browser's store is the user's to edit: out-of-range or wrongly typed values are skipped on restore
    and never stored; a preset outside the page's list is skipped."""
    from i2v.ui import persist

    stored = persist.remember(*["a cat" if n == "prompt" else (10 ** 9 if n == "num_frames" else
                                SETTINGS_BY_NAME[n].default) for n in persist.NAMES], "balanced")
    assert stored["prompt"] == "a cat" and "num_frames" not in stored and stored[persist.PRESET_KEY] == "balanced"
    updates = persist.restore({"prompt": "a cat", "num_inference_steps": "7; drop", "fps": -5,
                               persist.PRESET_KEY: "nope"}, ["balanced", "custom"])
    by_name = dict(zip([*persist.NAMES, persist.PRESET_KEY], updates))
    assert by_name["prompt"]["value"] == "a cat"
    assert "value" not in by_name["num_inference_steps"] and "value" not in by_name["fps"]
    assert "value" not in by_name[persist.PRESET_KEY]
    assert persist.restore("not a dict") == [{"__type__": "update"}] * (len(persist.NAMES) + 1)


def test_dropping_a_video_or_its_sidecar_restores_its_settings_by_name_only(tmp_path):
    """Like PNG Info: a dropped MP4 of ours (or its .json) is found in outputs/ by its name and its settings come
    back as Reuse brings them; the dropped copy's content is never read, and an unknown name applies nothing."""
    from i2v.core.settings import SETTINGS
    from i2v.core.words import render
    from tests.test_ui import FakeRequest, HistoryService, handlers

    fns = handlers(HistoryService(tmp_path, None))
    seed_at = 1 + [s.name for s in SETTINGS].index("seed")
    for dropped in ("/tmp/gradio/abc/video_1.mp4", "/tmp/gradio/def/video_1.json"):   # Gradio's upload copies
        out = fns["reuse_dropped"](dropped, FakeRequest())
        assert out[1]["value"] == "a boat" and out[seed_at]["value"] == 99, dropped
    out = fns["reuse_dropped"]("/tmp/gradio/x/holiday.mp4", FakeRequest("zh-CN"))
    assert all(update == {"__type__": "update"} for update in out[:-2])
    assert out[-2] == render("dropped_unknown", "zh", name="holiday.mp4")


def test_the_dark_or_light_choice_survives_a_reload_per_browser(browser, app):
    """The "Dark / light" button flips Gradio's dark class and the choice is kept for this browser only."""
    context = browser.new_context(locale="en-US", color_scheme="light")
    dark = "() => document.body.classList.contains('dark')"
    try:
        page = loaded(context, app.url)
        assert page.evaluate(dark) is False                      # a light system: Gradio starts light
        page.locator("#i2v-theme").click()
        page.wait_for_function(dark)
        page.reload()
        page.locator("#i2v-generate").wait_for()
        page.wait_for_function(dark)                              # remembered
        page.locator("#i2v-theme").click()
        page.wait_for_function(f"() => !({dark})()")
        page.reload()
        page.locator("#i2v-generate").wait_for()
        page.wait_for_function("() => document.readyState === 'complete'")
        assert page.evaluate(dark) is False
    finally:
        context.close()
    fresh = browser.new_context(locale="en-US", color_scheme="light")
    try:
        assert loaded(fresh, app.url).evaluate(dark) is False    # another browser keeps its own
    finally:
        fresh.close()
