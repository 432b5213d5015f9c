"""The page's layer over the one catalogue (i2v.core.words): English and Chinese text for the web UI.

Static text (labels, headings, button captions) goes through Gradio's I18n: the browser picks the language.
Messages made by handlers (errors, notices, estimates) are translated here with `text(lang, key)`, the
language coming from the request's Accept-Language header (the same browser preference).
Setting labels and help come from the settings table (i2v.core.settings) in both languages.
"""
from __future__ import annotations

from functools import lru_cache

from i2v.core import words
from i2v.core.settings import SETTINGS
from i2v.core.words import downloads, page

LANGS = ("en", "zh")

_ZH_SETTINGS = {s.name: (s.label_zh, s.help_zh) for s in SETTINGS}   # Chinese text lives in the settings table

EN = {**page.EN, **downloads.PAGE_EN,
      **{f"setting_{s.name}": s.label for s in SETTINGS},
      **{f"setting_{s.name}_help": s.help for s in SETTINGS}}
ZH = {**page.ZH, **downloads.PAGE_ZH,
      **{f"setting_{name}": label for name, (label, _) in _ZH_SETTINGS.items()},
      **{f"setting_{name}_help": help_ for name, (_, help_) in _ZH_SETTINGS.items()}}

MESSAGES = words.TABLES     # run-time messages: the one catalogue, every subject


@lru_cache(maxsize=1)
def i18n_table():
    """Gradio's I18n over EN/ZH, built on first use (importing this module does not import Gradio)."""
    import gradio as gr

    return gr.I18n(en=EN, zh=ZH)


def __getattr__(name: str):
    if name == "I18N":
        return i18n_table()
    raise AttributeError(name)


def t(key: str):
    """Static, translated-in-the-browser text for a component label, value or heading."""
    if key not in EN:
        raise KeyError(key)
    return i18n_table()(key)


def static_text(lang: str, key: str) -> str:
    """A static text (a button caption) in `lang`, for a handler that changes it at run time."""
    return (ZH if lang == "zh" else EN).get(key) or EN[key]


def lang_of(request) -> str:
    """'zh' when the browser prefers Chinese (Accept-Language), else 'en'."""
    headers = getattr(request, "headers", None) or {}
    try:
        accept = headers.get("accept-language", "") or ""
    except Exception:  # noqa: BLE001 - odd header objects: fall back to English
        accept = ""
    first = accept.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def text(lang: str, key: str, **values) -> str:
    """A run-time message in `lang` (English when missing), from the one catalogue."""
    return words.render(key, lang, **values)
