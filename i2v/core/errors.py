"""One vocabulary of user-facing failures: `I2VError(key, **params)`, its text looked up by key in English or
Chinese. Nothing is ever recognised by matching English text; the worker sends keys and params across the
pipe. A message that names a field names it by its label in the reader's language.

Stdlib only (i2v.core). The words are in the one catalogue, i2v.core.words. A key not in the catalogue is
treated as ready-made English text (older call sites, being converted), shown as it is in both languages.
"""
from __future__ import annotations

from typing import Any, Mapping

from i2v.core import words

LANGS = ("en", "zh")
MAX_ECHO_CHARS = 40        # a bad value is echoed back, cut to this length

MESSAGES = words.TABLES      # the failures' words live in the one catalogue (i2v.core.words.failures)


def echo(value: Any) -> str:
    """A bad value as shown back to the user: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO_CHARS else text[:MAX_ECHO_CHARS - 1] + "…"


def field_label(field: str, lang: str) -> str:
    """A field's label in lang, from the settings table (the image and unknown names as they are)."""
    from i2v.core.settings import FIELD_LABELS

    labels = FIELD_LABELS.get(field)
    if labels is None:
        return field
    return labels[1] if lang == "zh" else labels[0]


def message(key: str, params: Mapping[str, Any], lang: str = "en") -> str:
    template = words.template(key, lang)
    values = dict(params)
    if "field" in values:
        values["label"] = field_label(str(values["field"]), lang)
    if key == "problems":
        separator = "；" if lang == "zh" else " "
        values["problems"] = separator.join(p.text(lang) for p in values["problems"])
    return template.format(**values)


class I2VError(Exception):
    """A failure the user can act on: a key into MESSAGES and its parameters (plain, picklable values)."""

    def __init__(self, key: str, **params: Any):
        if not words.has(key):                 # ready-made English text
            key, params = "text", {"text": key}
        self.key, self.params = key, params
        super().__init__(self.text("en"))

    def text(self, lang: str = "en") -> str:
        return message(self.key, self.params, lang)

    def __reduce__(self):                       # pickles as (key, params) across the worker's pipe
        return _rebuild, (type(self), self.key, self.params)


def _rebuild(cls, key, params):
    error = cls.__new__(cls)
    I2VError.__init__(error, key, **params)
    return error


def several(problems: list[I2VError], cls: type[I2VError] = I2VError) -> I2VError:
    """One error of class cls carrying several problems (all of a form's bad fields at once)."""
    return cls("problems", problems=list(problems))
