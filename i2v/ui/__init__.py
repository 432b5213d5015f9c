"""The web UI, in three parts: `format` (pure formatters: data -> text in English or Chinese), `handlers`
(what each event does, over the service, testable without a browser) and `layout` (Blocks layout, then the
wiring). `build_ui(service)` builds the page.
"""
from i2v.ui.format import (GIB, clean_message, device_markdown, estimate_markdown, history_label, history_markdown,
                           memory_html, plan_text, preset_choices, report_markdown, status_markdown)
from i2v.ui.handlers import PRESET_FIELDS, Handlers, delete_output, presets_status, session_of
from i2v.ui.layout import CSS, QUEUE_MAX_SIZE, TITLE, I2VBlocks, build_ui, launch_kwargs

__all__ = ["build_ui", "launch_kwargs", "I2VBlocks", "Handlers", "QUEUE_MAX_SIZE", "TITLE", "CSS", "GIB",
           "PRESET_FIELDS", "clean_message", "device_markdown", "estimate_markdown", "history_label",
           "history_markdown", "memory_html", "plan_text", "preset_choices", "report_markdown", "status_markdown",
           "delete_output", "presets_status", "session_of"]
