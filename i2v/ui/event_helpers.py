"""Small pieces the page's event handlers share: a settings row's choices in words, the generate function
built from the settings table, the time left in a phase, batch seeds, the error pop-up, the caller's session."""
from __future__ import annotations

import inspect
import time

import gradio as gr

from i2v.core.settings import MAX_BATCH, MAX_SEED, SETTINGS
from i2v.core.settings import SETTINGS_BY_NAME as S
from i2v.i18n import text
from i2v.service import ProgressUpdate, resolve_seed

PRESET_FIELDS = ("resolution", "num_frames", "fps", "num_inference_steps", "guidance_scale")


def choice_list(setting, lang: str) -> list[tuple[str, object]]:
    """(words, value) for each choice of a settings row, in `lang`; the values themselves when it has no words."""
    if not setting.choice_labels:
        return [(str(c), c) for c in setting.choices]
    side = 1 if lang == "zh" else 0
    return [(words[side], c) for c, words in zip(setting.choices, setting.choice_labels)]


def settings_function(name: str, run, extra: dict | None = None):
    """A function Gradio can call with the image, then one argument per settings row (table order, each with its
    default), then `extra` (name -> default): the page's and the API's generate inputs follow the settings table,
    so a new parameter is one row there. It calls run(image, values, *extra, request=..., progress=...)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    extra = extra or {}
    parameters = [inspect.Parameter("image", kind, default=None),
                  *(inspect.Parameter(s.name, kind, default=s.default) for s in SETTINGS),
                  *(inspect.Parameter(k, kind, default=v) for k, v in extra.items()),
                  inspect.Parameter("request", kind, default=None, annotation=gr.Request),
                  inspect.Parameter("progress", kind, default=gr.Progress())]
    signature = inspect.Signature(parameters)

    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        return run(given["image"], {s.name: given[s.name] for s in SETTINGS}, *(given[k] for k in extra),
                   request=given["request"], progress=given["progress"])

    call.__signature__ = signature
    call.__annotations__ = {"request": gr.Request}
    call.__name__ = call.__qualname__ = name
    call.__doc__ = run.__doc__
    return call


class StepClock:
    """The time left in a phase with a count (denoising steps, decode chunks), from the pace of the steps run so
    far (the first step is the clock's start, so loading or warm-up does not skew it)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.phase, self.first_index, self.started = None, 0, 0.0

    def seconds_left(self, update: ProgressUpdate) -> float | None:
        if not update.total:
            return None
        now = self.clock()
        if update.phase != self.phase:
            self.phase, self.first_index, self.started = update.phase, update.index, now
            return None
        done = update.index - self.first_index
        if done <= 0:
            return None
        return (now - self.started) / done * max(0, update.total - update.index)


def batch_count(value) -> int | None:
    """Videos per click from the page's box: a whole number 1..MAX_BATCH, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and 1 <= number <= MAX_BATCH else None


def consecutive_seeds(seed, count: int) -> list:
    """The seeds of a batch: seed, seed+1, …; from a random start when seed is -1 (random). A seed that is not
    a valid number is passed on once, so the usual message names the field."""
    if count == 1 or S["seed"].check(seed) is not None:
        return [seed]
    start = resolve_seed(int(seed))
    return [(start + i) % (MAX_SEED + 1) for i in range(count)]


def error(lang: str, message: str) -> gr.Error:
    """The page's error pop-up, titled in the user's language (the traceback stays in the log, not on the page)."""
    return gr.Error(message, title=text(lang, "toast_error"), print_exception=False)


def same_value(wanted, shown) -> bool:
    """A preset's value against a widget's (the page may send 16 as 16.0 or "16")."""
    try:
        return float(wanted) == float(shown)
    except (TypeError, ValueError):
        return False


def session_of(request) -> str | None:
    """Who a call comes from: the browser tab's or API client's session (Gradio's session hash)."""
    return getattr(request, "session_hash", None) if request is not None else None
