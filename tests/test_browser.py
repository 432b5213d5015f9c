"""The web UI in a real headless Chromium (Debian's /usr/bin/chromium via Playwright) against the tiny model.

Flows: upload + preset + generate (progress moves, a playable <video> of the new MP4), Stop during a long run,
an injected out-of-memory error with its suggestion, Clear GPU cache figures, history reuse/delete, Chinese
labels, keyboard access. No page may ever show a traceback or a raw exception class name.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from i2v.configs import load_presets
from tests.conftest import app_fixture, make_image

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("I2V_SCREENSHOTS", "/tmp/i2v-screenshots"))
FORBIDDEN = re.compile(r"Traceback|\b\w+(Error|Exception|Failure|Cancelled)\b|File \"")
UI_TIMEOUT_MS = 180_000    # a bound, not a wait: a busy machine runs a job many times slower, and every wait ends
                           # as soon as the page shows what it waits for

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


app = app_fixture("browser-app")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    return make_image(tmp_path_factory.mktemp("browser-img") / "input.png", 320, 240)


def open_page(browser, url: str, locale: str = "en-US"):
    page = browser.new_page(locale=locale, viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(url)
    page.locator("#i2v-generate").wait_for()
    return page


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_clean(page) -> None:
    """No traceback, no raw exception class name anywhere on the page."""
    body = page.inner_text("body")
    bad = FORBIDDEN.search(body)
    assert bad is None, f"page shows {bad.group(0)!r}: …{body[max(0, bad.start() - 200):bad.end() + 200]}…"


def set_number(page, elem_id: str, value) -> None:
    """Type into a slider's number box (Gradio updates the slider on Enter / blur)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def fill_form(page, image: Path, prompt: str, frames: int, steps: int, preset_label: str | None = None) -> None:
    page.locator("#i2v-image input[type=file]").set_input_files(str(image))
    page.locator("#i2v-image img").first.wait_for()
    page.locator("#i2v-prompt textarea").fill(prompt)
    advanced = page.locator("#i2v-advanced")
    if not page.locator("#i2v-frames input[type=number]").is_visible():
        advanced.locator(".label-wrap").first.click()      # the accordion's header, in either language
    if preset_label:   # choosing a preset fills the sliders from configs/presets.toml
        page.locator("#i2v-preset input").click()
        options = page.get_by_role("option")
        options.first.wait_for()
        names = options.all_inner_texts()
        assert len(names) == len(load_presets()) + 1 and sum(n.startswith("★") for n in names) <= 1, names  # + Custom
        page.get_by_role("option", name=re.compile(re.escape(preset_label))).click()
        preset = next(p for p in load_presets() if p.label == preset_label)
        page.wait_for_function("([f, s]) => document.querySelector('#i2v-frames input[type=number]').value == f"
                               " && document.querySelector('#i2v-steps input[type=number]').value == s",
                               arg=[str(preset.num_frames), str(preset.num_inference_steps)])
    page.locator("#i2v-resolution input").click()
    page.get_by_role("option", name="256", exact=True).click()
    set_number(page, "i2v-frames", frames)
    set_number(page, "i2v-steps", steps)
    set_number(page, "i2v-fps", 8)
    page.wait_for_function(
        "([f, s]) => document.querySelector('#i2v-frames input[type=number]').value == f"
        " && document.querySelector('#i2v-steps input[type=number]').value == s", arg=[str(frames), str(steps)])


def wait_for_progress(page, pattern: str = r"\d+\s*/\s*\d+ steps.*Denoising") -> str:
    """The status tracker over the video shows e.g. '3/40 steps | 2.1s' (elapsed/ETA) and 'Denoising - 7.5%'."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        textual = page.locator("#i2v-video").inner_text()
        if re.search(pattern, textual, re.S):
            return textual
        time.sleep(0.05)
    raise AssertionError(f"no progress matching {pattern!r}; video box shows {textual!r}")


def test_generate_shows_progress_then_a_playable_video(browser, app, image):
    page = open_page(browser, app.url)
    # the estimate line reacts to the sliders; the preset list is filled from the service
    estimate = page.locator("#i2v-estimate")
    estimate.get_by_text("Predicted peak").wait_for()
    first_estimate = estimate.inner_text()
    fill_form(page, image, "a drifting gradient", frames=3, steps=8, preset_label="Fast preview")
    page.wait_for_function("(old) => document.querySelector('#i2v-estimate').innerText != old", arg=first_estimate)
    assert re.search(r"Predicted peak [\d.]+ GiB / available [\d.]+ GiB \((predicted|calibrated)\)", estimate.inner_text())
    before = set(app.outputs.glob("*.mp4")) if app.outputs.exists() else set()
    page.locator("#i2v-generate").click()
    progress = wait_for_progress(page)
    shot(page, "progress")
    first = re.search(r"(\d+)\s*/\s*(\d+)", progress)
    video = page.locator("#i2v-video video")
    video.wait_for(timeout=UI_TIMEOUT_MS)
    new = set(app.outputs.glob("*.mp4")) - before
    assert len(new) == 1, new
    name = new.pop().name
    src = video.get_attribute("src")
    assert src and name in src, (src, name)
    assert int(first.group(2)) == 8
    # playable: the browser reads the MP4's metadata (duration) from the served file
    page.wait_for_function("() => { const v = document.querySelector('#i2v-video video');"
                           " return v && v.readyState >= 1 && v.duration > 0; }")
    assert page.locator("#i2v-info").inner_text().count("seed") >= 1
    page.locator("#i2v-clear-cache").click()
    page.locator("#i2v-memory [role=img][aria-label*='before']").first.wait_for()
    page.wait_for_timeout(300)
    shot(page, "generated")
    page.locator("#i2v-advanced").get_by_text("Advanced parameters").click()   # fold it: the README picture
    page.wait_for_timeout(300)
    shot(page, "readme")
    assert_clean(page)


def test_stop_during_a_long_run_ends_with_the_stopped_message(browser, app, image):
    page = open_page(browser, app.url)
    fill_form(page, image, "slow", frames=3, steps=150)
    page.locator("#i2v-generate").click()
    wait_for_progress(page, r"\b([2-9]|\d\d+)\s*/\s*150 steps.*Denoising")
    started = time.monotonic()
    page.locator("#i2v-stop").click()
    page.locator("#i2v-stop-message").get_by_text("Stopping").wait_for()
    page.get_by_text("Stopped").first.wait_for(timeout=30_000)
    assert time.monotonic() - started < 30
    page.locator("#i2v-notice").get_by_text("nothing was saved").wait_for()
    shot(page, "stopped")
    assert_clean(page)


def test_clear_cache_and_unload_show_before_and_after_figures(browser, app):
    page = open_page(browser, app.url)
    page.locator("#i2v-memory [role=img]").first.wait_for()     # the figures shown at load ("now")
    page.locator("#i2v-clear-cache").click()
    page.locator("#i2v-memory [role=img][aria-label*='before']").first.wait_for()
    bars = page.locator("#i2v-memory [role=img]")
    labels = [bars.nth(i).get_attribute("aria-label") for i in range(bars.count())]
    assert any("before" in label for label in labels) and any("after" in label for label in labels), labels
    assert all("GiB" in label for label in labels)
    assert "GiB" in page.locator("#i2v-device").inner_text()
    page.locator("#i2v-memory").get_by_text("Cache cleared").wait_for()
    shot(page, "cleared")
    page.locator("#i2v-unload").click()
    page.locator("#i2v-memory").get_by_text("Model unloaded").wait_for()
    assert page.locator("#i2v-memory [role=img][aria-label*='before']").count() > 0
    assert_clean(page)


def test_history_reuse_and_delete_with_confirmation(browser, app, image):
    page = open_page(browser, app.url)
    if not list(app.outputs.glob("*.mp4")):
        pytest.skip("needs the output of the generate test")
    page.get_by_role("tab", name="History").click()
    details = page.locator("#i2v-history-details")
    details.get_by_text("Seed", exact=False).first.wait_for()
    assert "Frames" in details.inner_text() and "Timings" in details.inner_text()
    page.locator("#i2v-history-video video").wait_for()
    thumbs = page.locator("#i2v-gallery img")
    thumbs.first.wait_for()                                   # first-frame pictures of the outputs
    assert thumbs.count() == len(list(app.outputs.glob("video_*.mp4")))
    thumbs.first.click()                                      # a click chooses that video
    page.locator("#i2v-history-video video").wait_for()
    shot(page, "history")
    page.locator("#i2v-reuse").click()
    page.locator("#i2v-generate").wait_for(state="visible")
    assert page.locator("#i2v-prompt textarea").input_value() in {"a drifting gradient", "slow"}
    page.locator("#i2v-image img").first.wait_for()           # the input image is back too
    page.locator("#i2v-notice").get_by_text("the seed is random again").wait_for()    # said, not silent
    if not page.locator("#i2v-seed input").is_visible():
        page.locator("#i2v-advanced .label-wrap").first.click()
    assert page.locator("#i2v-seed input").input_value() == "-1"
    page.get_by_role("tab", name="History").click()
    assert str(app.outputs.resolve()) in page.locator("#i2v-folder").inner_text()     # where the files are
    page.locator("#i2v-export-gif").click()
    page.locator("#i2v-history-message").get_by_text("is ready").wait_for()
    gif_link = page.locator("#i2v-export a").first
    gif_link.wait_for()
    assert ".gif" in (gif_link.get_attribute("href") or "") and page.request.get(gif_link.get_attribute("href")).ok
    chosen = set(app.outputs.glob("*.mp4"))
    page.locator("#i2v-delete").click()
    page.locator("#i2v-confirm-delete").click()
    page.locator("#i2v-history-message").get_by_text("Deleted").wait_for()
    left = set(app.outputs.glob("*.mp4"))
    assert len(left) == len(chosen) - 1
    gone = (chosen - left).pop()
    assert not gone.with_suffix(".json").exists()
    assert_clean(page)


def test_generate_is_keyboard_reachable_and_controls_are_labelled(browser, app, image):
    page = open_page(browser, app.url)
    button = page.get_by_role("button", name="Generate", exact=True)
    assert button.count() == 1
    page.locator("#i2v-prompt textarea").focus()     # Tab from the prompt reaches Generate
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "i2v-generate":
            break
    assert page.evaluate("() => document.activeElement.id") == "i2v-generate"
    page.keyboard.press("Enter")      # with no image: a clear message, proof that Enter triggered generate
    page.get_by_text("please provide an input image").first.wait_for()
    page.locator("#i2v-advanced").get_by_text("Advanced parameters").click()
    page.locator("#i2v-seed input").wait_for()
    for elem_id in ("i2v-prompt", "i2v-negative_prompt", "i2v-preset", "i2v-image", "i2v-seed", "i2v-steps",
                    "i2v-seed-random", "i2v-seed-reuse"):
        assert page.locator(f"#{elem_id}").get_by_text(re.compile(r"\w")).count() > 0, elem_id
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, textarea, button, select')]
        .filter(e => e.offsetParent !== null && e.type !== 'file')
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.getAttribute('aria-labelledby') && !(e.innerText || '').trim() && !e.title)
        .map(e => e.outerHTML.slice(0, 120))""")
    assert not unlabelled, unlabelled
    assert_clean(page)


def test_chinese_browser_gets_chinese_labels(browser, app):
    page = open_page(browser, app.url, locale="zh-CN")
    page.get_by_role("button", name="生成", exact=True).wait_for()
    body = page.inner_text("body")
    for word in ("输入图片", "提示词", "预设", "清理显存缓存", "历史记录"):
        assert word in body, word
    page.get_by_role("button", name="停止", exact=True).click()      # a handler message, in Chinese too
    page.locator("#i2v-stop-message").get_by_text("当前没有正在运行的任务").wait_for()
    shot(page, "zh")
    assert_clean(page)


def test_ctrl_enter_generates_the_used_seed_is_shown_and_seed_buttons_work(browser, app, image):
    page = open_page(browser, app.url)
    fill_form(page, image, "keyboard", frames=2, steps=2)
    set_number(page, "i2v-batch", 2)               # two videos, consecutive seeds
    page.locator("#i2v-stop").click()              # leaves the last action's message on screen
    stop_message = page.locator("#i2v-stop-message")
    stop_message.get_by_text("queue").wait_for()   # Stop's last word (nothing running, none waiting)
    page.locator("#i2v-prompt textarea").press("Control+Enter")
    used = page.locator("#i2v-used-seed")
    used.get_by_text("2 videos").wait_for()
    assert stop_message.inner_text().strip() == ""          # a new Generate cleared it
    count, first, seed = re.findall(r"\d+", used.inner_text())
    assert int(seed) == int(first) + 1
    page.locator("#i2v-seed-random").click()
    page.wait_for_function("() => document.querySelector('#i2v-seed input').value == '-1'")
    page.locator("#i2v-seed-reuse").click()
    page.wait_for_function("(s) => document.querySelector('#i2v-seed input').value == s", arg=seed)
    assert_clean(page)


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_on_a_phone_generate_is_on_the_first_screen_and_nothing_overflows(browser, app, locale):
    page = browser.new_page(locale=locale, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(app.url)
    button = page.locator("#i2v-generate")
    button.wait_for()
    box = button.bounding_box()
    assert box["y"] + box["height"] <= 844, box           # no scrolling to reach Generate
    assert box["width"] >= 100 and box["height"] >= 32, box  # a thumb can hit it
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= 390 + 1, f"the page is {wide} px wide on a 390 px screen"
    shot(page, f"phone-{locale[:2]}")
    page.close()


# English a Chinese page must not show (words of the model line, progress, results, panels)
ENGLISH_ON_ZH_PAGE = re.compile(r"\b(Model|Loading|Denoising|Decoding|Encoding|steps|Seed used|worker|ready|loaded|"
                                r"Stopped|Stopping|Predicted|available|fits|recommended|Fast preview|Standard|"
                                r"History|Video|Preview|built-in|Info|Warning|Error)\b")     # "tiny" is the test model's name


def test_chinese_page_shows_progress_results_and_panels_in_chinese(browser, app, image):
    page = open_page(browser, app.url, locale="zh-CN")
    page.locator("#i2v-estimate").get_by_text("预测峰值").wait_for()
    fill_form(page, image, "一只猫", frames=2, steps=8)
    page.locator("#i2v-generate").click()
    wait_for_progress(page, r"\d+\s*/\s*8\s*步.*去噪")
    page.locator("#i2v-used-seed").get_by_text("使用的种子").wait_for()
    # every word on the page, except the info box: the JSON data the API returns (keys and the model's own log
    # strings), shown as data in both languages
    body = page.evaluate("() => { const c = document.body.cloneNode(true);"
                         " c.querySelectorAll('#i2v-info').forEach(e => e.remove()); return c.innerText; }")
    shot(page, "zh-generated")
    english = sorted(set(ENGLISH_ON_ZH_PAGE.findall(body)))
    assert not english, f"English on the Chinese page: {english}: …{body[:3000]}"
    assert_clean(page)


oom_app = app_fixture("browser-oom", extra_env={"I2V_INJECT_OOM": "denoise:1", "I2V_AUTO_FALLBACK": "0"})


def test_injected_oom_shows_the_suggestion_and_use_these_settings_runs(browser, oom_app, image):
    page = open_page(browser, oom_app.url)
    fill_form(page, image, "oom please", frames=4, steps=3)
    page.locator("#i2v-generate").click()
    notice = page.locator("#i2v-notice")
    notice.get_by_text("Out of memory while denoising").wait_for()     # "memory": this machine has no GPU
    shot(page, "oom")
    assert_clean(page)
    frames = re.search(r"Frames (\d+)", notice.inner_text())
    if frames is None:   # nothing smaller predicted to fit: no button to offer
        assert not page.locator("#i2v-use-settings").is_visible()
        return
    page.locator("#i2v-use-settings").click()
    page.wait_for_function("(f) => document.querySelector('#i2v-frames input[type=number]').value == f",
                           arg=frames.group(1))
    # the injected fault fires once: the suggested settings now run to a video
    page.locator("#i2v-generate").click()
    page.locator("#i2v-video video").wait_for()
    page.locator("#i2v-use-settings").wait_for(state="hidden")   # the success handler hides the offer
    assert_clean(page)
