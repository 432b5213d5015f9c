"""The one catalogue of user-facing words, in English and Chinese: failures, the plan, memory, a run's progress
and the page. Data carries keys and parameters only; the page, the CLI, the sidecar and the logs render them
here with `render(key, lang, **params)`.

Split by subject (one module per subject, each with an `EN` and a `ZH` table) so that no file grows too long;
a key lives in exactly one subject (checked at import). Stdlib only (i2v.core).
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from i2v.core.words import config, downloads, failures, memory, models, page, page_messages, plan, run, serving, worker

LANGS = ("en", "zh")
SUBJECTS = (failures, plan, memory, run, page_messages, page, downloads, config, serving, models, worker)
LANG_ENV = "LANG"          # the CLI's default language: LANG=zh_CN.UTF-8 -> zh
LOCALE_ENV = ("LC_ALL", "LC_MESSAGES", LANG_ENV)     # read in this order, as the C library does


def _merge(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for subject in SUBJECTS:
        table = subject.ZH if lang == "zh" else subject.EN
        twice = set(merged) & set(table)
        if twice:
            raise RuntimeError(f"catalogue keys in two subjects: {sorted(twice)}")
        merged.update(table)
    return merged


TABLES: dict[str, dict[str, str]] = {lang: _merge(lang) for lang in LANGS}


def has(key: str) -> bool:
    return key in TABLES["en"]


def template(key: str, lang: str = "en") -> str:
    """The raw template of key in lang (English when lang lacks it); KeyError for a key not in the catalogue."""
    if key not in TABLES["en"]:
        raise KeyError(f"not in the catalogue: {key!r}")
    return TABLES.get(lang, TABLES["en"]).get(key) or TABLES["en"][key]


def render(key: str, lang: str = "en", **params: Any) -> str:
    """key's text in lang with its {placeholders} filled; KeyError for a key not in the catalogue."""
    text = template(key, lang)
    return text.format(**params) if params else text


def render_all(key: str, params: Mapping[str, Any]) -> dict[str, str]:
    """key's text in every language (what a sidecar stores next to the key)."""
    return {lang: render(key, lang, **params) for lang in LANGS}


def lang_of_locale(value: str | None) -> str:
    """'zh' for a Chinese locale or language tag (zh_CN.UTF-8, zh-TW, zh), else 'en'."""
    return "zh" if (value or "").strip().lower().startswith("zh") else "en"


def default_lang(environ: Mapping[str, str] | None = None) -> str:
    """The CLI's language when --lang is not given: from LANG (LC_ALL and LC_MESSAGES first, as the C library)."""
    env = os.environ if environ is None else environ
    for name in LOCALE_ENV:
        if env.get(name):
            return lang_of_locale(env[name])
    return "en"
