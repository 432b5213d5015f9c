"""The web UI in a real headless Chromium (Debian's /usr/bin/chromium via Playwright) against the tiny model.

Flows, each in English and in Chinese (the words a test waits for are the product's own messages in that
language, from i2v.i18n and i2v.core.errors): upload + preset + generate (progress moves, a playable <video> of
the new MP4), one verdict in the preset list and the estimate panel, Stop during a long run, an injected
out-of-memory error with its suggestion, the cache figures, history (gallery, reuse, export, delete), crop or
pad of a panorama, Ctrl+Enter with a batch and the seed buttons, keyboard access, the phone layout. No page may
ever show a traceback, a raw exception class name or an internal field name.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from i2v import i18n
from i2v.configs import load_presets
from i2v.core import errors
from i2v.core.settings import FIELD_LABELS, SETTINGS_BY_NAME
from i2v.video import sidecar_path
from tests.conftest import app_fixture, make_image

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("I2V_SCREENSHOTS", "/tmp/i2v-screenshots"))
FORBIDDEN = re.compile(r"Traceback|\b\w+(Error|Exception|Failure|Cancelled)\b|File \"")
# Internal names that must never reach the page outside the info box (the API's JSON data, shown as data):
# settings and plan keys, Python literals, Gradio's unnamed outputs.
INTERNAL = re.compile(r"\b(num_frames|num_inference_steps|guidance_scale|negative_prompt|image_fit|forward_chunking|"
                      r"decode_chunk_size|vae_tiling|cfg_split|chunk_tokens|weights_dtype|seconds_per_step|peak_gib|"
                      r"offload (none|model|group|sequential)|True|False|None|value_\d+)\b")
LOCALES = ["en-US", "zh-CN"]
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


@pytest.fixture(autouse=True)
def close_pages(browser):
    """Every page a test opened is closed after it: an open Gradio page keeps polling the server and running
    its scripts, and twenty of them made a 2-core machine crawl (load 19)."""
    yield
    for context in list(browser.contexts):
        context.close()


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


def lang_of(locale: str) -> str:
    return "zh" if locale.startswith("zh") else "en"


def _template(locale: str, key: str) -> str:
    lang = lang_of(locale)
    return i18n.MESSAGES[lang].get(key) or errors.MESSAGES[lang][key]


def said(locale: str, key: str) -> str:
    """The longest literal piece of a message in the page's language: placeholders and Markdown split it, so
    the page's text holds this piece verbatim whatever the values were."""
    pieces = re.split(r"\{[^}]*\}|[`*]", _template(locale, key))
    return max((piece.strip(" ：:;；，,.。…（）()") for piece in pieces), key=len)


def said_pattern(locale: str, key: str, **values) -> re.Pattern:
    """A message as a regular expression: the given values filled in, any other placeholder matching anything."""
    parts = re.split(r"(\{[^}]*\})", _template(locale, key))
    regex = ""
    for part in parts:
        name = part[1:-1].split(":")[0] if part.startswith("{") else None
        if name is None:
            regex += re.escape(part.replace("`", "").replace("**", ""))
        elif name in values:
            regex += re.escape(str(values[name]))
        else:
            regex += ".+?"
    return re.compile(regex)


def label(locale: str, key: str) -> str:
    """A static label of the page (gr.I18n) in the page's language."""
    return (i18n.ZH if lang_of(locale) == "zh" else i18n.EN)[key]


def field(locale: str, name: str) -> str:
    """A settings field's name as the page writes it."""
    return FIELD_LABELS[name][1 if lang_of(locale) == "zh" else 0]


def assert_clean(page) -> None:
    """No traceback, no raw exception class name anywhere on the page; no internal name outside the info box."""
    body = page.inner_text("body")
    bad = FORBIDDEN.search(body)
    assert bad is None, f"page shows {bad.group(0)!r}: …{body[max(0, bad.start() - 200):bad.end() + 200]}…"
    shown = page.evaluate("() => { const c = document.body.cloneNode(true);"
                          " c.querySelectorAll('#i2v-info').forEach(e => e.remove()); return c.innerText; }")
    internal = INTERNAL.search(shown)
    assert internal is None, \
        f"page shows {internal.group(0)!r}: …{shown[max(0, internal.start() - 200):internal.end() + 200]}…"


def set_number(page, elem_id: str, value) -> None:
    """Type into a slider's number box (Gradio updates the slider on Enter / blur)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def fill_form(page, image: Path, prompt: str, frames: int, steps: int, preset_id: str | None = None,
              locale: str = "en-US") -> None:
    page.locator("#i2v-image input[type=file]").set_input_files(str(image))
    page.locator("#i2v-image img").first.wait_for()
    page.locator("#i2v-prompt textarea").fill(prompt)
    open_advanced(page)
    if preset_id:   # choosing a preset fills the sliders from configs/presets.toml
        preset = next(p for p in load_presets() if p.id == preset_id)
        choose_preset(page, preset.name if lang_of(locale) == "zh" else preset.label)
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


def open_advanced(page) -> None:
    if not page.locator("#i2v-frames input[type=number]").is_visible():
        page.locator("#i2v-advanced .label-wrap").first.click()      # the accordion's header, in either language
        page.locator("#i2v-frames input[type=number]").wait_for()


def info_text(page) -> str:
    """The raw info JSON, which sits in the closed Details accordion: opened first (a hidden element reads empty)."""
    if not page.locator("#i2v-info").is_visible():
        page.locator("#i2v-details .label-wrap").first.click()      # the accordion's header, in either language
        page.locator("#i2v-info").wait_for()
    return page.locator("#i2v-info").inner_text()


def choose_preset(page, name: str) -> None:
    page.locator("#i2v-preset input").click()
    options = page.get_by_role("option")
    options.first.wait_for()
    names = options.all_inner_texts()
    assert len(names) == len(load_presets()) + 1 and sum(n.startswith("★") for n in names) <= 1, names  # + Custom
    # the name at the start ("高质量" is also inside "超高质量")
    page.get_by_role("option", name=re.compile(rf"^(★ )?{re.escape(name)}( |$)")).click()


def progress_pattern(locale: str, steps: str = r"\d+") -> str:
    """The status tracker over the video, e.g. '3/40 steps | 2.1s' and 'Denoising · about 5 s left - 7.5%'."""
    words = i18n.MESSAGES[lang_of(locale)]
    return rf"\b{steps}\s*/\s*\d+\s*{words['unit_steps']}.*{words['progress_denoise']}"


def wait_for_progress(page, pattern: str) -> str:
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        textual = page.locator("#i2v-video").inner_text()
        if re.search(pattern, textual, re.S):
            return textual
        time.sleep(0.05)
    raise AssertionError(f"no progress matching {pattern!r}; video box shows {textual!r}")


def test_generate_shows_progress_then_a_playable_video(browser, app, image):
    locale = "en-US"
    page = open_page(browser, app.url)
    # the estimate line reacts to the sliders; the preset list is filled from the service
    estimate = page.locator("#i2v-estimate")
    estimate.get_by_text(said(locale, "estimate_needs")).wait_for()
    first_estimate = estimate.inner_text()
    fill_form(page, image, "a drifting gradient", frames=3, steps=8, preset_id="fast")
    page.wait_for_function("(old) => document.querySelector('#i2v-estimate').innerText != old", arg=first_estimate)
    assert re.search(r"Needs [\d.]+ GiB with this plan \((predicted|calibrated)\) · budget [\d.]+ GiB", estimate.inner_text())
    before = set(app.outputs.glob("*.mp4")) if app.outputs.exists() else set()
    page.locator("#i2v-generate").click()
    progress = wait_for_progress(page, progress_pattern(locale))
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
    assert info_text(page).count("seed") >= 1
    page.locator("#i2v-clear-cache").click()
    page.locator("#i2v-memory [role=img][aria-label*='before']").first.wait_for()
    page.wait_for_timeout(300)
    shot(page, "generated")
    page.locator("#i2v-advanced .label-wrap").first.click()   # fold it: the README picture
    page.wait_for_timeout(300)
    shot(page, "readme")
    assert_clean(page)


def _figures(markdown: str) -> tuple[str | None, str | None]:
    """(the GiB figure, the time) a preset label or the estimate panel writes."""
    gib = re.search(r"(\d+\.\d) GiB", markdown)
    when = re.search(r"(\d+ (?:s|min))\b", markdown)
    return (gib.group(1) if gib else None, when.group(1) if when else None)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_preset_list_and_the_estimate_panel_give_one_verdict(browser, app, locale):
    """The chosen preset's label (status, peak, time) and the panel agree: at page load (the recommended one), after
    choosing each other preset; after a slider moves, the list says Custom."""
    page = open_page(browser, app.url, locale=locale)
    estimate = page.locator("#i2v-estimate")
    estimate.get_by_text(said(locale, "estimate_needs")).wait_for()
    preset_box = page.locator("#i2v-preset input")
    verdicts = {"preset_fits": "estimate_fits", "preset_fits_with_offload": "estimate_offload",
                "preset_does_not_fit": "estimate_no_fit"}

    def agree(expected_label: str | None) -> None:
        page.wait_for_function("(want) => { const v = document.querySelector('#i2v-preset input').value;"
                               " return want ? v.replace('★ ', '').startsWith(want + ' ') : v.length > 0; }",
                               arg=expected_label)
        chosen = preset_box.input_value()
        want_gib, want_time = _figures(chosen)
        assert want_gib, chosen
        # the panel, once it describes these settings (its figures follow the sliders the preset filled)
        # (the memory alone is not enough: steps change the time, not the GiB, and on a busy machine the panel
        # may still show the answer for a half-filled preset until its last estimate lands)
        deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
        while _figures(panel := estimate.inner_text()) != (want_gib, want_time) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _figures(panel) == (want_gib, want_time), (chosen, panel)
        for status, verdict in verdicts.items():
            if said(locale, status) == chosen.split(" — ")[-1].split(", ")[0].split("，")[0]:
                assert said(locale, verdict) in panel, (chosen, panel)

    agree(None)                       # the page opens on the recommended preset
    shot(page, f"{lang_of(locale)}-verdict")
    open_advanced(page)
    for preset in load_presets():
        name = preset.name if lang_of(locale) == "zh" else preset.label
        choose_preset(page, name)
        agree(name)
    set_number(page, "i2v-frames", 5)   # the user's own change: the list no longer names a preset
    page.wait_for_function("(c) => document.querySelector('#i2v-preset input').value == c",
                           arg=said(locale, "preset_custom"))
    assert_clean(page)


@pytest.mark.parametrize("locale", LOCALES)
def test_stop_during_a_long_run_ends_with_the_stopped_message(browser, app, image, locale):
    page = open_page(browser, app.url, locale=locale)
    fill_form(page, image, "slow", frames=3, steps=150, locale=locale)
    page.locator("#i2v-generate").click()
    wait_for_progress(page, progress_pattern(locale, r"([2-9]|\d\d+)"))
    started = time.monotonic()
    page.locator("#i2v-stop").click()
    page.locator("#i2v-stop-message").get_by_text(said(locale, "stopping")).wait_for()
    page.locator("#i2v-notice").get_by_text(said(locale, "stopped")).wait_for(timeout=30_000)
    assert time.monotonic() - started < 30
    assert page.locator(".toast-body.error, span.error").count() == 0     # the user's own Stop is no error
    shot(page, f"{lang_of(locale)}-stopped")
    assert_clean(page)


@pytest.mark.parametrize("locale", LOCALES)
def test_clear_cache_and_unload_show_before_and_after_figures(browser, app, locale):
    page = open_page(browser, app.url, locale=locale)
    page.locator("#i2v-memory [role=img]").first.wait_for()     # the figures shown at load ("now")
    button = page.locator("#i2v-clear-cache")
    assert button.inner_text().strip() == label(locale, "clear_cache_cpu")   # no GPU here: "memory", not "GPU"
    button.click()
    before, after = said(locale, "before"), said(locale, "after")
    page.locator(f"#i2v-memory [role=img][aria-label*='{before}']").first.wait_for()
    bars = page.locator("#i2v-memory [role=img]")
    labels = [bars.nth(i).get_attribute("aria-label") for i in range(bars.count())]
    assert any(before in text for text in labels) and any(after in text for text in labels), labels
    assert all("GiB" in text for text in labels)
    assert "GiB" in page.locator("#i2v-device").inner_text()
    page.locator("#i2v-memory").get_by_text(said(locale, "cleared")).wait_for()
    shot(page, f"{lang_of(locale)}-cleared")
    page.locator("#i2v-unload").click()
    page.locator("#i2v-memory").get_by_text(said(locale, "unloaded")).wait_for()
    assert page.locator(f"#i2v-memory [role=img][aria-label*='{before}']").count() > 0
    assert_clean(page)


@pytest.mark.parametrize("locale", LOCALES)
def test_history_gallery_reuse_export_and_delete_with_confirmation(browser, app, image, locale):
    from gradio_client import handle_file

    prompt = f"history {locale}"           # a video of its own, made through the API
    app.client().predict(image=handle_file(str(image)), prompt=prompt, resolution=256, num_frames=2,
                         num_inference_steps=2, fps=8, api_name="/generate")
    page = open_page(browser, app.url, locale=locale)
    page.get_by_role("tab", name=label(locale, "tab_history")).click()
    details = page.locator("#i2v-history-details")
    details.get_by_text(field(locale, "seed"), exact=False).first.wait_for()
    assert field(locale, "num_frames") in details.inner_text() and said(locale, "timings") in details.inner_text()
    page.locator("#i2v-history-video video").wait_for()
    thumbs = page.locator("#i2v-gallery img")
    thumbs.first.wait_for()                                   # first-frame pictures of the outputs
    assert thumbs.count() == len(list(app.outputs.glob("video_*.mp4")))
    thumbs.first.click()                                      # a click chooses that video (the newest: ours)
    page.locator("#i2v-history-video video").wait_for()
    shot(page, f"{lang_of(locale)}-history")
    page.locator("#i2v-reuse").click()
    page.locator("#i2v-generate").wait_for(state="visible")
    page.wait_for_function("(p) => document.querySelector('#i2v-prompt textarea').value == p", arg=prompt)
    page.locator("#i2v-image img").first.wait_for()           # the input image is back too
    page.locator("#i2v-notice").get_by_text(said(locale, "reused")).wait_for()    # said, not silent
    open_advanced(page)
    newest = max(app.outputs.glob("video_*.mp4"), key=lambda p: p.stat().st_mtime)      # the thumbnail chosen
    made_with = json.loads(sidecar_path(newest).read_text())["seed"]
    assert page.locator("#i2v-seed input").input_value() == str(made_with)      # the seed comes back too
    assert page.locator("#i2v-frames input[type=number]").input_value() == "2"
    page.get_by_role("tab", name=label(locale, "tab_history")).click()
    assert str(app.outputs.resolve()) in page.locator("#i2v-folder").inner_text()     # where the files are
    page.locator("#i2v-export-gif").click()
    page.locator("#i2v-history-message").get_by_text(said(locale, "exported")).wait_for()
    gif_link = page.locator("#i2v-export a").first
    gif_link.wait_for()
    assert ".gif" in (gif_link.get_attribute("href") or "") and page.request.get(gif_link.get_attribute("href")).ok
    chosen = set(app.outputs.glob("*.mp4"))
    page.locator("#i2v-delete").click()
    page.locator("#i2v-confirm-delete").click()
    page.locator("#i2v-history-message").get_by_text(said(locale, "deleted")).wait_for()
    left = set(app.outputs.glob("*.mp4"))
    assert len(left) == len(chosen) - 1
    gone = (chosen - left).pop()
    assert not gone.with_suffix(".json").exists()
    assert_clean(page)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_panorama_is_padded_or_cropped_as_chosen_and_the_page_says_so(browser, app, tmp_path, locale):
    panorama = make_image(tmp_path / "panorama.png", 1200, 300)
    page = open_page(browser, app.url, locale=locale)
    fill_form(page, panorama, "a wide view", frames=2, steps=2, locale=locale)
    fit = page.locator("#i2v-image_fit")
    fitting = SETTINGS_BY_NAME["image_fit"]
    pad_words = {value: words[1 if lang_of(locale) == "zh" else 0]
                 for value, words in zip(fitting.choices, fitting.choice_labels)}
    fit.get_by_text(pad_words["pad"], exact=True).click()
    page.locator("#i2v-generate").click()
    notice = page.locator("#i2v-notice")
    notice.get_by_text(said(locale, "image_padded")).wait_for()
    assert "1200x300" in notice.inner_text() and "512x256" in notice.inner_text()
    fit.get_by_text(pad_words["crop"], exact=True).click()
    page.locator("#i2v-generate").click()
    notice.get_by_text(said(locale, "image_cropped")).wait_for()
    assert_clean(page)


@pytest.mark.parametrize("locale", LOCALES)
def test_generate_is_keyboard_reachable_and_controls_are_labelled(browser, app, image, locale):
    page = open_page(browser, app.url, locale=locale)
    button = page.get_by_role("button", name=label(locale, "generate"), exact=True)
    assert button.count() == 1
    page.locator("#i2v-prompt textarea").focus()     # Tab from the prompt reaches Generate
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "i2v-generate":
            break
    assert page.evaluate("() => document.activeElement.id") == "i2v-generate"
    page.keyboard.press("Enter")      # with no image: a clear message, proof that Enter triggered generate
    page.get_by_text(said(locale, "image_missing")).first.wait_for()
    open_advanced(page)
    page.locator("#i2v-seed input").wait_for()
    for elem_id in ("i2v-prompt", "i2v-negative_prompt", "i2v-preset", "i2v-image", "i2v-seed", "i2v-steps",
                    "i2v-seed-random", "i2v-seed-reuse", "i2v-image_fit"):
        assert page.locator(f"#{elem_id}").get_by_text(re.compile(r"\S")).count() > 0, elem_id   # any script
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
    for word in ("输入图片", "提示词", "预设", "清理内存缓存", "历史记录"):
        assert word in body, word
    page.get_by_role("button", name="停止", exact=True).click()      # a handler message, in Chinese too
    page.locator("#i2v-stop-message").get_by_text("当前没有正在运行的任务").wait_for()
    shot(page, "zh")
    assert_clean(page)


@pytest.mark.parametrize("locale", LOCALES)
def test_ctrl_enter_generates_the_used_seed_is_shown_and_seed_buttons_work(browser, app, image, locale):
    page = open_page(browser, app.url, locale=locale)
    fill_form(page, image, "keyboard", frames=2, steps=2, locale=locale)
    set_number(page, "i2v-batch", 2)               # two videos, consecutive seeds
    page.locator("#i2v-stop").click()              # leaves the last action's message on screen
    stop_message = page.locator("#i2v-stop-message")
    stop_message.get_by_text(said(locale, "left_queue")).wait_for()   # Stop's last word (nothing running or waiting)
    page.locator("#i2v-prompt textarea").press("Control+Enter")
    used = page.locator("#i2v-used-seed")
    used.get_by_text(said_pattern(locale, "seeds_used", count=2)).wait_for()
    assert stop_message.inner_text().strip() == ""          # a new Generate cleared it
    count, first, seed = re.findall(r"\d+", used.inner_text())
    assert int(count) == 2 and int(seed) == int(first) + 1
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


# English a Chinese page must not show (words of the model line, progress, results, panels)
ENGLISH_ON_ZH_PAGE = re.compile(r"\b(Model|Loading|Denoising|Decoding|Encoding|steps|Seed used|worker|ready|loaded|"
                                r"Stopped|Stopping|Predicted|available|fits|recommended|Fast preview|Standard|"
                                r"History|Video|Preview|built-in|Info|Warning|Error)\b")     # "tiny" is the test model's name


def test_chinese_page_shows_progress_results_and_panels_in_chinese(browser, app, image):
    page = open_page(browser, app.url, locale="zh-CN")
    page.locator("#i2v-estimate").get_by_text("按此方案需要").wait_for()     # the verdict: needs · budget
    fill_form(page, image, "一只猫", frames=2, steps=8)
    page.locator("#i2v-generate").click()
    wait_for_progress(page, progress_pattern("zh-CN"))
    page.locator("#i2v-used-seed").get_by_text("使用的种子").wait_for()
    # every word on the page, except the info box: the JSON data the API returns (keys and the model's own log
    # strings), shown as data in both languages
    body = page.evaluate("() => { const c = document.body.cloneNode(true);"
                         " c.querySelectorAll('#i2v-info').forEach(e => e.remove()); return c.innerText; }")
    shot(page, "zh-generated")
    english = sorted(set(ENGLISH_ON_ZH_PAGE.findall(body)))
    assert not english, f"English on the Chinese page: {english}: …{body[:3000]}"
    assert_clean(page)


OOM_ONCE = {"I2V_INJECT_OOM": "denoise:1", "I2V_AUTO_FALLBACK": "0"}   # fires once per server: an app per language
oom_app = app_fixture("browser-oom", extra_env=OOM_ONCE)
oom_app_zh = app_fixture("browser-oom-zh", extra_env=OOM_ONCE)


@pytest.mark.parametrize("locale", LOCALES)
def test_injected_oom_shows_the_suggestion_and_use_these_settings_runs(browser, request, image, locale):
    running = request.getfixturevalue("oom_app_zh" if lang_of(locale) == "zh" else "oom_app")
    page = open_page(browser, running.url, locale=locale)
    fill_form(page, image, "oom please", frames=4, steps=3, locale=locale)
    page.locator("#i2v-generate").click()
    notice = page.locator("#i2v-notice")
    notice.get_by_text(said(locale, "oom_mem")).wait_for()
    assert i18n.MESSAGES[lang_of(locale)]["mem_cpu"] in notice.inner_text()   # "memory": this machine has no GPU
    shot(page, f"{lang_of(locale)}-oom")
    assert_clean(page)
    frames = re.search(re.escape(field(locale, "num_frames")) + r" (\d+)", notice.inner_text())
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
