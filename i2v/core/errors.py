"""One vocabulary of user-facing failures: `I2VError(key, **params)`, its text looked up by key in English or
Chinese. Nothing is ever recognised by matching English text; the worker sends keys and params across the
pipe. A message that names a field names it by its label in the reader's language.

Stdlib only (i2v.core). The words are in the one catalogue, i2v.core.words. A key not in the catalogue is
refused (NotAKey) when the error is made, so ready-made English cannot slip in where a key belongs.
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


# Every field a message can name: (English label, Chinese label). Filled by the settings table when it is
# imported (i2v.core.settings registers its rows), so this module needs nothing above it: no import loop.
_FIELD_LABELS: dict[str, tuple[str, str]] = {}


def register_field_labels(labels: Mapping[str, tuple[str, str]]) -> None:
    """Make fields nameable by their labels (the settings table calls this for its rows)."""
    _FIELD_LABELS.update(labels)


def field_label(field: str, lang: str) -> str:
    """A field's label in lang, from the settings table (the image and unknown names as they are)."""
    labels = _FIELD_LABELS.get(field)
    if labels is None:
        return field
    return labels[1] if lang == "zh" else labels[0]


def message(key: str, params: Mapping[str, Any], lang: str = "en") -> str:
    template = words.template(key, lang)
    values = dict(params)
    if "field" in values:
        values["label"] = field_label(str(values["field"]), lang)
    if "device" in values:               # the memory a message names: "GPU memory" on a GPU, else "memory"
        values["mem"] = words.render("mem_cuda" if values["device"] == "cuda" else "mem_cpu", lang)
    if "detail_key" in values:           # a detail in words too (why a worker was lost): its key, same params
        values["detail"] = words.render(str(values["detail_key"]), lang, **values)
    if key == "problems":
        separator = "；" if lang == "zh" else " "
        values["problems"] = separator.join(p.text(lang) for p in values["problems"])
    return template.format(**values)


class NotAKey(LookupError):
    """An I2VError made with a key the catalogue lacks (ready-made English, a typo): a programming error."""


class I2VError(Exception):
    """A failure the user can act on: a key into MESSAGES and its parameters (plain, picklable values)."""

    def __init__(self, key: str, **params: Any):
        if not words.has(key):
            raise NotAKey(f"{type(self).__name__}: {key!r} is not a key of the catalogue (i2v.core.words); "
                          f"add it there in English and Chinese, and pass its values as parameters")
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


# --- the failures of a run (raised by the runner, the worker supervisor, Ray and the service) --------------
class RequestError(I2VError, ValueError):
    """Bad user input: a key and params naming the field; safe to show in either language."""


class BusyError(I2VError, RuntimeError):
    """Another generation is running (the UI queue normally prevents this)."""


class GenerationFailed(I2VError, RuntimeError):
    """An unexpected failure; the message is safe to show, the traceback is in the log."""


class GenerationCancelled(I2VError):
    """The user pressed Stop (or the app is shutting down); raised at the next phase boundary, step, or layer
    inside a step (i2v.cancel_points)."""


class WorkerLost(GenerationFailed):
    """The worker (a local process or a Ray actor) hung or died and was replaced; says what was released."""


class ClusterUnavailable(I2VError, RuntimeError):
    """Ray is missing, or the cluster cannot be reached or offers no worker."""


class OutOfMemoryFailure(GenerationFailed):
    """Out of memory with no attempt left. Params (plain values, so it pickles and crosses the wire as they
    are): phase, attempts (how many were made), device ('cuda' or not), report (what failed, memory before and
    after, the attempts) and suggestion (settings predicted to fit the memory free after cleanup, or None)."""

    KEY = "oom_mem"

    @classmethod
    def of(cls, phase: str, attempts: int, device: str, report: dict | None = None,
           suggestion: dict | None = None) -> "OutOfMemoryFailure":
        return cls(cls.KEY, phase=phase, attempts=attempts, device=device, report=report or {},
                   suggestion=suggestion)

    @property
    def report(self) -> dict:
        return self.params.get("report") or {}

    @property
    def suggestion(self) -> dict | None:
        return self.params.get("suggestion")

    def text(self, lang: str = "en") -> str:
        """What failed, in the reader's language, and the settings predicted to fit (or that none are)."""
        if self.key != self.KEY:
            return super().text(lang)
        phase = str(self.params.get("phase", "?"))
        phase_words = words.render(f"phase_{phase}", lang) if words.has(f"phase_{phase}") else phase
        mem = words.render("mem_cuda" if self.params.get("device") == "cuda" else "mem_cpu", lang)
        head = words.render(self.KEY, lang, phase=phase_words, mem=mem, attempts=self.params.get("attempts", 1))
        suggestion = self.suggestion
        if not suggestion:
            return f"{head} {words.render('oom_no_suggestion', lang)}"
        requested = self.report.get("requested") or {}
        changed = {name: value for name, value in suggestion.items()
                   if requested.get(name) != value and name not in ("prompt", "negative_prompt")}
        separator = "，" if lang == "zh" else ", "
        values = separator.join(f"{field_label(name, lang)} {value}" for name, value in changed.items())
        return f"{head} {words.render('oom_suggest', lang, values=values)}"


# The types that cross a process boundary by name (i2v.core.wire); a type not listed arrives as GenerationFailed.
WIRE_TYPES: dict[str, type[I2VError]] = {cls.__name__: cls for cls in (
    I2VError, RequestError, BusyError, GenerationFailed, GenerationCancelled, WorkerLost, ClusterUnavailable,
    OutOfMemoryFailure)}
