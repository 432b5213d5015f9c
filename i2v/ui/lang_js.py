"""A page script at load (one of Blocks `js=`, see i2v.ui.page_js): the page title in the browser's language, the words Gradio writes
itself without its i18n ("processing |", "queue: 1/1 |", a toast's "Error" title) in Chinese on a Chinese page,
and the prompt marked required before Generate. The words come from the catalogue (i2v.core.words.page)."""
from __future__ import annotations

import json

from i2v.i18n import static_text

# Gradio's hard-coded English (its status tracker and toasts) -> our catalogue key
GRADIO_WORDS = {"processing": "gradio_processing", "queue": "gradio_queue", "Error": "gradio_error",
                "Warning": "gradio_warning", "Info": "gradio_info"}

_LANG_JS = """() => {
  const words = __WORDS__;
  const lang = ((navigator.languages && navigator.languages[0]) || navigator.language || 'en')
    .toLowerCase().startsWith('zh') ? 'zh' : 'en';
  const mine = words[lang];
  document.title = mine.title;
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  const prompt = () => {
    const box = document.querySelector('#i2v-prompt textarea');
    if (box && !box.required) { box.required = true; box.setAttribute('aria-required', 'true'); }
  };
  // status tracker: "processing | 4.0s", "queue: 1/1 | 2.0s"; toasts: the title of the message box
  const fix = (node) => {
    if (lang !== 'zh' || !node || node.nodeType !== Node.TEXT_NODE) return;
    const old = node.nodeValue;
    let now = old.replace(/^(\\s*)processing(\\s*\\|)/, (m, a, b) => a + mine.processing + b)
                 .replace(/^(\\s*)queue:/, (m, a) => a + mine.queue + '：');
    const parent = node.parentElement;
    if (parent && parent.closest('.toast-title') && mine.toast[old.trim()]) {
      now = old.replace(old.trim(), mine.toast[old.trim()]);
    }
    if (now !== old) node.nodeValue = now;
  };
  const walk = (root) => {
    if (root.nodeType === Node.TEXT_NODE) { fix(root); return; }
    const it = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = it.nextNode(); n; n = it.nextNode()) fix(n);
  };
  new MutationObserver((records) => {
    prompt();
    for (const r of records) {
      if (r.type === 'characterData') fix(r.target);
      else r.addedNodes.forEach(walk);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
  prompt(); walk(document.body);
}"""


def page_words() -> dict:
    """What the script needs, in both languages, from the catalogue."""
    out = {}
    for lang in ("en", "zh"):
        toast = {word: static_text(lang, key) for word, key in GRADIO_WORDS.items() if word[0].isupper()}
        out[lang] = {"title": static_text(lang, "page_title"), "processing": static_text(lang, "gradio_processing"),
                     "queue": static_text(lang, "gradio_queue"), "toast": toast}
    return out


def script() -> str:
    """The script (a function's source) with the catalogue's words in both languages."""
    return _LANG_JS.replace("__WORDS__", json.dumps(page_words(), ensure_ascii=False))
