"""What the page remembers per browser: every setting (prompt and negative prompt included) and the last preset,
kept in the browser's localStorage through gr.BrowserState, so that a reload or a new tab starts where the user
left off. Values come back through the settings table's own checks: a stored value that is no longer valid (an
older version, a hand-edited store) is skipped, never applied."""
from __future__ import annotations

import hashlib
from pathlib import Path

import gradio as gr

from i2v.core.settings import SETTINGS, SETTINGS_BY_NAME

STORAGE_KEY = "i2v-settings"
PRESET_KEY = "preset"          # the stored preset choice, beside the settings rows' names
NAMES = tuple(s.name for s in SETTINGS)


def browser_state(outputs_dir: Path) -> gr.BrowserState:
    """The page's memory. Its secret (BrowserState encrypts what it stores) is stable for this install, so that
    a restarted app still reads what the browser kept; restored values are checked anyway."""
    secret = hashlib.sha256(f"i2v-page-memory:{Path(outputs_dir).resolve()}".encode()).hexdigest()[:32]
    return gr.BrowserState({}, storage_key=STORAGE_KEY, secret=secret)


def remember(*values) -> dict:
    """The state to store: the settings in table order, then the preset choice."""
    *settings, preset = values
    stored = {name: value for name, value in zip(NAMES, settings) if SETTINGS_BY_NAME[name].check(value) is None}
    if isinstance(preset, str) and preset:
        stored[PRESET_KEY] = preset
    return stored


def restore(stored, preset_choices: list | None = None):
    """Updates for the settings rows (table order), then the preset box, from the stored state: a value this
    version accepts is applied, anything else leaves the widget as the page loaded it."""
    stored = stored if isinstance(stored, dict) else {}
    updates = []
    for name in NAMES:
        value = stored.get(name)
        ok = name in stored and SETTINGS_BY_NAME[name].check(value) is None
        updates.append(gr.update(value=value) if ok else gr.update())
    preset = stored.get(PRESET_KEY)
    ok = isinstance(preset, str) and (preset_choices is None or preset in preset_choices)
    return [*updates, gr.update(value=preset) if ok else gr.update()]


def forget():
    """Reset to defaults: the stored state emptied and every row at the table's default (the page then fills
    in the running model's own defaults and the recommended preset)."""
    return [{}, *(s.default for s in SETTINGS)]


def preset_names(service) -> list[str]:
    """The preset box's values on this page (the presets and Custom): a stored preset outside them is skipped."""
    from i2v.ui.format import CUSTOM_PRESET
    from i2v.ui.handlers import presets_status

    return [p["name"] for p in presets_status(service, None).get("presets", [])] + [CUSTOM_PRESET]
