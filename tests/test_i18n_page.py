"""The page's static words (gr.I18n tables): every label says something in words in both languages (an emoji
alone shows as an empty box without an emoji font), buttons carry no emoji at all, and the load script's words
(tab title, Gradio's own tracker and toast words) come from the catalogue."""
from __future__ import annotations

import json
import re

from i2v import i18n
from i2v.ui import lang_js

EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]")
WORDS = re.compile(r"[A-Za-z\u4e00-\u9fff]{2,}")
BUTTONS = ("generate", "stop", "seed_random", "seed_reuse", "reuse", "delete", "reset_settings", "open_folder",
           "refresh", "unload", "export_gif", "export_frames", "queue_cancel")


def test_every_page_label_has_words_and_buttons_have_no_emoji():
    for table in (i18n.EN, i18n.ZH):
        assert set(table) == set(i18n.EN)
        for key, value in table.items():
            assert WORDS.search(value), (key, value)
        for key in BUTTONS:
            assert not EMOJI.search(table[key]), (key, table[key])


def test_the_load_script_carries_the_catalogues_words():
    script = lang_js.script()
    words = json.loads(re.search(r"const words = (\{.*?\});\n", script, re.S).group(1))
    assert words["zh"]["title"] == i18n.ZH["page_title"] and words["en"]["title"] == i18n.EN["page_title"]
    assert words["zh"]["processing"] == i18n.ZH["gradio_processing"]
    assert words["zh"]["toast"]["Error"] == i18n.ZH["gradio_error"]
    # Gradio's own key, translated by its i18n (our table is merged into its dictionaries)
    assert "{position}" in i18n.ZH["status.queue_position"] and "{size}" in i18n.ZH["status.queue_position"]
