"""A Chinese page with no English left (issue 28), in a real headless Chromium: at load, with a job waiting in
the queue and while it runs, the page shows at most 3 English words besides proper names; Gradio's own words
(its queue and processing lines, a toast's title) are in Chinese; the tab title is Chinese; the browser console
has no i18n warnings. The English page gets no Chinese."""
from __future__ import annotations

import re
import time

import pytest

from i2v import i18n
from tests.conftest import app_fixture, make_image
from tests.test_browser import UI_TIMEOUT_MS, browser, open_advanced, set_number  # noqa: F401 - browser: a fixture

pytestmark = pytest.mark.browser

app = app_fixture("lang-app")
MAX_ENGLISH_WORDS = 3
# Proper names and units that stay as they are in a Chinese UI: the app, formats, units, libraries, the model
# names, and the simulated device's name (the tests' stand-in for a card's name such as "GeForce RTX 4090").
PROPER = {"i2v", "gpu", "cpu", "mp4", "gif", "png", "zip", "gib", "mib", "api", "gradio", "pytorch", "vae",
          "vgen-xl", "i2vgen-xl", "xl", "tiny", "wan", "ltx", "fp16", "fp32", "bf16", "cuda", "hugging", "face",
          "simulated", "fps", "json"}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*[A-Za-z0-9]")
# every text the page shows (the info box is data: the API's JSON, its keys are names)
SHOWN_JS = ("() => { const c = document.body.cloneNode(true);"
            " c.querySelectorAll('#i2v-info, script, style').forEach(e => e.remove());"
            " document.body.appendChild(c); c.style.position = 'absolute'; const t = c.innerText; c.remove();"
            " return t; }")

# Gradio's own English in its status tracker ("processing | 4.0s", "queue: 1/1 |", "In queue: 1 of 1")
GRADIO_ENGLISH = re.compile(r"\b(processing|queue|In queue)\b")
RECORDER_JS = """() => { window.__i2vTexts = [];
  new MutationObserver((records) => { for (const r of records) {
    if (r.type === 'characterData') window.__i2vTexts.push(r.target.nodeValue);
    else r.addedNodes.forEach(n => { if ((n.textContent || '').trim()) window.__i2vTexts.push(n.textContent); });
  } }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""


def english_words(text: str) -> list[str]:
    return [w for w in WORD.findall(text) if w.lower() not in PROPER]


def chinese_page(browser, url):
    page = browser.new_page(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(UI_TIMEOUT_MS)
    warnings = []
    page.on("console", lambda m: warnings.append(m.text) if "svelte-i18n" in m.text or "Message with id" in m.text
            else None)
    page.goto(url)
    page.locator("#i2v-generate").wait_for()
    page.wait_for_function("() => document.querySelector('#i2v-preset input')?.value")   # the load chain ran
    return page, warnings


def test_chinese_page_at_load_and_mid_run_has_at_most_three_english_words(browser, app, tmp_path):
    page, warnings = chinese_page(browser, app.url)
    try:
        assert page.title() == i18n.ZH["page_title"]
        at_load = english_words(page.evaluate(SHOWN_JS))
        assert len(at_load) <= MAX_ENGLISH_WORDS, at_load

        # a toast from Gradio (no image): its title in Chinese
        page.locator("#i2v-generate").click()
        page.locator(".toast-title").first.wait_for()
        assert page.locator(".toast-title").first.inner_text().strip() == i18n.ZH["gradio_error"]

        image = make_image(tmp_path / "in.png")
        page.locator("#i2v-image input[type=file]").set_input_files(str(image))
        page.locator("#i2v-image img").first.wait_for()
        page.locator("#i2v-prompt textarea").fill("一只猫")
        open_advanced(page)
        set_number(page, "i2v-frames", 8)
        set_number(page, "i2v-steps", 40)
        page.evaluate(RECORDER_JS)      # every text Gradio writes during the run, however briefly shown
        page.locator("#i2v-generate").click()
        seen, worst = set(), []
        deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:       # sampled until the progress of the run is on the page
            tracker = page.locator("#i2v-video").inner_text()
            words = english_words(page.evaluate(SHOWN_JS))
            worst = max(worst, words, key=len)
            seen.update(english_words(tracker))
            if re.search(r"\d+\s*/\s*\d+", tracker):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"no progress on the page: {tracker!r}")
        assert len(worst) <= MAX_ENGLISH_WORDS, worst
        assert not seen, seen          # Gradio's tracker: no "processing", "queue"
        written = page.evaluate("() => window.__i2vTexts")
        assert written and not [t for t in written if GRADIO_ENGLISH.search(t)], written
        page.locator("#i2v-stop").click()
        assert not warnings, warnings
    finally:
        page.close()


def test_english_page_has_no_chinese(browser, app):
    page = browser.new_page(locale="en-US", viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page.goto(app.url)
        page.locator("#i2v-generate").wait_for()
        page.wait_for_function("() => document.querySelector('#i2v-preset input')?.value")
        assert page.title() == i18n.EN["page_title"]
        chinese = re.findall(r"[\u4e00-\u9fff]+", page.evaluate(SHOWN_JS))
        assert not chinese, chinese
    finally:
        page.close()
