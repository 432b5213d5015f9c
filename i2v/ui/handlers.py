"""What each UI event does: translate between widget values and the service, in the caller's language.

`Handlers(service)` holds no widgets: its methods take plain values plus the request (anything with
`headers` and `session_hash`) and return values or `gr.update(...)` dicts, so tests call them directly with a
stand-in service and request. The layout module wires them to components.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import secrets
import sys
import threading
import time
from pathlib import Path

import gradio as gr

from i2v.core.settings import MAX_BATCH, MAX_SEED, SETTINGS
from i2v.core.settings import SETTINGS_BY_NAME as S
from i2v.i18n import lang_of, text
from i2v.image_input import header_size
from i2v.core.errors import BusyError, GenerationCancelled, GenerationFailed, RequestError
from i2v.service import ProgressUpdate, resolve_seed
from i2v.ui.liveness import CallerWatch
from i2v.ui.uploads import Uploads
from i2v.ui.format import (CUSTOM_PRESET, adjustment_text, current_model, duration_text, entry_family, mem, clean_message,
                           device_markdown, estimate_markdown, history_label, history_markdown, memory_html,
                           model_choices, phase_text, plan_text, preset_choices, progress_text, report_markdown,
                           status_data, status_markdown, values_text)

log = logging.getLogger(__name__)

PRESET_FIELDS = ("resolution", "num_frames", "fps", "num_inference_steps", "guidance_scale")
MODEL_NOTE_S = 20.0       # how long a model switch's outcome stays under the model line (the timer redraws it)


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


def _same_value(wanted, shown) -> bool:
    """A preset's value against a widget's (the page may send 16 as 16.0 or "16")."""
    try:
        return float(wanted) == float(shown)
    except (TypeError, ValueError):
        return False


def session_of(request) -> str | None:
    """Who a call comes from: the browser tab's or API client's session (Gradio's session hash)."""
    return getattr(request, "session_hash", None) if request is not None else None


def delete_output(outputs_dir: Path, path: str | Path) -> list[Path]:
    """Delete an output and its sidecar (i2v.history: inside outputs/ only), and Gradio's cached copy of the
    video, so a deleted video is gone from every URL the page handed out."""
    from gradio import utils

    from i2v import files, history

    target = history.resolve_output(outputs_dir, path)
    cached = gradio_cached_copy(target) if files.is_own_file(target, outputs_dir) else None
    removed = history.delete_output(outputs_dir, target)
    if cached is not None and files.remove_own(cached, utils.get_upload_folder()):   # never a link's target
        with contextlib.suppress(OSError):     # the hash folder holds only copies of this one file
            cached.parent.rmdir()
    return removed


def gradio_cached_copy(video_path: Path) -> Path | None:
    """Where Gradio keeps its copy of an output it served: <cache>/<content hash>/<name> (the scheme of
    gradio.processing_utils.save_file_to_cache); None when it is not there or would lie outside the cache."""
    from gradio import processing_utils, utils
    from gradio_client import utils as client_utils

    from i2v import files

    cache = Path(utils.get_upload_folder()).resolve()
    copy = (cache / processing_utils.hash_file(video_path)
            / client_utils.strip_invalid_filename_characters(video_path.name))    # not resolved: a link stays one
    return copy if files.is_own_file(copy, cache) else None


# --- service calls that tolerate an older service (methods still being added) ---------------------------
def _panel_call(service, name: str, *args):
    """Call a service method for a side panel; a failure is logged and shows as 'no data', never breaks the page."""
    try:
        return getattr(service, name)(*args)
    except Exception:  # noqa: BLE001 - a panel must never break the page
        log.exception("%s failed", name)
        return None


def presets_status(service, image_size) -> dict:
    data = _panel_call(service, "presets_status", image_size)
    if data is not None:
        return data
    from i2v import configs

    try:
        presets = configs.load_presets()
    except Exception:  # noqa: BLE001
        log.exception("cannot read presets")
        return {"recommended": None, "presets": []}
    return {"recommended": None, "presets": [
        {"name": p.id, "label": p.label, "label_en": p.label, "label_zh": p.name, "status": None,
         "values": p.values()} for p in presets]}



def running_family(service):
    """The family of the model that runs (the advisor's); I2VGen-XL for a service that has no advisor."""
    from i2v.models import DEFAULT_FAMILY

    advisor = getattr(service, "advisor", None)
    try:
        return advisor.family() if advisor is not None else DEFAULT_FAMILY
    except Exception:  # noqa: BLE001 - the rows must still show
        log.exception("cannot tell the running family")
        return DEFAULT_FAMILY


def service_models(service) -> list[dict]:
    """The Model list's entries (none from a service that cannot switch models)."""
    return (_panel_call(service, "models") or []) if hasattr(service, "models") else []


def family_rows(family, lang: str) -> list:
    """One update per settings row (table order) giving its widget the family's default, range and choices;
    text rows and the seed keep what the user typed."""
    updates = []
    for setting in family.rules.settings():
        if setting.choices:
            updates.append(gr.update(choices=choice_list(setting, lang), value=setting.default))
        elif setting.kind is str or setting.name == "seed":
            updates.append(gr.update())
        else:
            updates.append(gr.update(value=setting.default, minimum=setting.minimum, maximum=setting.maximum,
                                     step=setting.step))
    return updates


class Handlers:
    """The UI's event handlers over one GenerationService (one instance per page build)."""

    def __init__(self, service):
        self.service = service
        self._outcomes: dict[str, dict] = {}   # session -> what the last generate produced (read by the .then step)
        self._outcomes_lock = threading.Lock()
        self.uploads = Uploads()             # build_ui tells it which uploads the waiting jobs name
        self.waiting_jobs = lambda: 0        # build_ui: how many generate jobs wait in the queue
        self._model_notes: dict[str | None, tuple[str, float]] = {}   # session -> its last switch's outcome
        self._stopped_running: set[str] = set()    # sessions whose Stop just reached a running job

    def on_unload(self, request: gr.Request) -> None:
        """The page went away: its uploaded images go (its running job is ended by CallerWatch)."""
        self.uploads.release(session_of(request))

    def _record(self, request, outcome: dict) -> None:
        key = getattr(request, "session_hash", None) or "api"
        with self._outcomes_lock:
            self._outcomes[key] = outcome

    @property
    def generate(self):
        """Generate a video from an image and a prompt; returns the MP4 and a JSON info object.
        A Stop ends the call with an error saying the generation was cancelled."""
        return settings_function("generate", self._generate_api)

    @property
    def generate_page(self):
        return settings_function("generate_page", self._generate_page, {"batch": 1})

    def _generate_api(self, image, values: dict, request=None, progress=None):
        """Generate a video from an image and a prompt; returns the MP4 and a JSON info object.
        A Stop ends the call with an error saying the generation was cancelled."""
        call = f"api-{secrets.token_hex(8)}"
        self.uploads.hold(call, image)      # held while this job runs: the client uploads it again next time
        try:
            with self._watch_caller(request):
                return self._generate(image, values, request, progress, stop_is_error=True)
        finally:
            self.uploads.release(call)

    def _watch_caller(self, request) -> CallerWatch:
        """While a generate runs: if its page closes or its client cancels the event, its job stops."""
        owner = session_of(request)
        return CallerWatch(lambda: self.service.cancel(owner=owner), session=owner)

    def _generate_page(self, image, values: dict, batch, request=None, progress=None):
        """The page's Generate: as generate, but the user's own Stop is a neutral notice, not a red error; and
        `batch` videos one after another with consecutive seeds (a Stop ends the batch)."""
        lang = lang_of(request)
        seed = values["seed"]
        count = batch_count(batch)
        if count is None:
            message = text(lang, "batch_invalid", maximum=MAX_BATCH)
            self._record(request, {"error": message})
            raise error(lang, message)
        seeds = consecutive_seeds(seed, count)
        self.uploads.hold(session_of(request), image, only=True)   # the page sends it again: held till it goes
        merged = {"notes": [], "infos": [], "seeds": []}
        with self._watch_caller(request) as watch:
            shown = self._generate_batch(image, values, seeds, request, progress, watch, merged)
        merged["seed"] = merged["seeds"][-1] if merged["seeds"] else None
        self._record(request, merged)
        return shown

    def _generate_batch(self, image, values, seeds, request, progress, watch, merged):
        lang, count, shown = lang_of(request), len(seeds), (gr.update(), gr.update())
        for index, one in enumerate(seeds, start=1):
            if watch.gone.is_set():       # the page went away: the rest of its batch is not started
                break
            prefix = text(lang, "batch_progress", index=index, count=count) if count > 1 else ""
            shown = self._generate(image, {**values, "seed": one}, request, progress, stop_is_error=False,
                                   prefix=prefix)
            outcome = self._peek(request)
            merged["notes"] += [n for n in outcome.get("notes", []) if n not in merged["notes"]]
            merged["infos"] += [n for n in outcome.get("infos", []) if n not in merged["infos"]]
            if outcome.get("stopped"):
                merged["stopped"] = outcome["stopped"]
                break
            merged["seeds"].append(outcome.get("seed"))
        return shown

    def _device_kind(self) -> str:
        """'cuda' or 'cpu': the page says "GPU memory" only where there is a GPU."""
        return (_panel_call(self.service, "device_info") or {}).get("kind") or "cuda"

    def gpu_present(self) -> bool:
        """Whether this machine has a GPU, so the page may speak of "GPU memory" (else "memory")."""
        return self._device_kind() == "cuda"

    def _peek(self, request) -> dict:
        with self._outcomes_lock:
            return dict(self._outcomes.get(getattr(request, "session_hash", None) or "api", {}))

    def _generate(self, image, values: dict, request, progress, stop_is_error: bool, prefix: str = ""):
        lang = lang_of(request)

        # the page shows the time left; API clients keep the plain phase name as the progress description
        eta = StepClock() if not stop_is_error else None

        def report(update: ProgressUpdate) -> None:
            desc = prefix + progress_text(update.phase, lang)
            left = eta.seconds_left(update) if eta else None
            if left is not None:
                desc += " · " + text(lang, "eta", time=duration_text(left))
            if update.total:   # steps and chunks: Gradio shows "i/total unit" and the time so far
                progress((update.index, update.total), desc=desc,
                         unit=text(lang, f"unit_{update.unit}") if update.unit else "")
            else:              # loading the model, an OOM retry: a phase without a count
                progress(update.fraction, desc=desc)

        self._record(request, {})
        try:
            result = self.service.generate(image, values, progress=report, owner=session_of(request))
        except (RequestError, BusyError) as exc:
            message = exc.text(lang)
            self._record(request, {"error": message})
            raise error(lang, message) from None
        except GenerationCancelled as exc:
            if not stop_is_error:          # the page: the message alone, in the user's language
                self._record(request, {"stopped": text(lang, "stopped")})
                return gr.update(), gr.update()
            message = text(lang, "stopped") + (f" ({clean_message(exc)})" if str(exc) else "")
            self._record(request, {"error": message})
            raise error(lang, message) from None
        except GenerationFailed as exc:
            suggestion = getattr(exc, "suggestion", None)
            if suggestion is not None or type(exc).__name__ == "OutOfMemoryFailure":
                report_ = getattr(exc, "report", None) or {}
                phase = report_.get("phase") or "?"
                message = text(lang, "oom_mem", phase=phase_text(phase, lang), mem=mem(lang, self._device_kind()),
                               attempts=len(report_.get("attempts") or []) or 1)
                message += " " + (text(lang, "oom_suggest", values=values_text(suggestion, lang)) if suggestion
                                  else text(lang, "oom_no_suggestion"))
                self._record(request, {"error": message, "suggestion": suggestion or None})
                raise error(lang, message) from None
            self._record(request, {"error": clean_message(exc)})
            raise error(lang, clean_message(exc)) from None
        except Exception:  # noqa: BLE001 - never a traceback on the page
            log.exception("unexpected error in generate")
            self._record(request, {"error": text(lang, "unexpected")})
            raise error(lang, text(lang, "unexpected")) from None
        info = result.info()
        # what the run did, for the notice area under the video (cleared by the next Generate): no pop-ups,
        # whose headers Gradio writes in English
        device = self._device_kind()
        notes = [adjustment_text(a, lang, device) for a in info.get("adjustments") or []]
        if info.get("fallbacks"):
            notes.append(text(lang, "fallbacks", attempts=info.get("attempts"),
                              fallbacks=", ".join(map(str, info["fallbacks"]))))
        infos = [note.text(lang) for note in result.input_notes]
        if info.get("plan"):
            infos.append(text(lang, "plan_ran", plan=plan_text(info["plan"], lang, device)))
        self._record(request, {"notes": notes, "infos": infos, "seed": info.get("seed")})
        return str(result.video_path), info

    def after_generate(self, request: gr.Request):
        """Show what the last generate left: notices, an OOM suggestion (+ its button), and the new history."""
        key = getattr(request, "session_hash", None) or "api"
        with self._outcomes_lock:
            outcome = self._outcomes.pop(key, {})
        lang = lang_of(request)
        lines = [f"- ⚠️ {n}" for n in outcome.get("notes", [])] + [f"- ℹ️ {n}" for n in outcome.get("infos", [])]
        if outcome.get("error"):
            lines.insert(0, f"**{outcome['error']}**")
        if outcome.get("stopped"):          # the user's own Stop: a plain notice, not an error
            lines.insert(0, f"ℹ️ {outcome['stopped']}")
        suggestion = outcome.get("suggestion")
        seed, seeds = outcome.get("seed"), outcome.get("seeds") or []
        used_seed = text(lang, "seed_used", seed=seed) if seed is not None else ""
        if len(seeds) > 1:
            used_seed = text(lang, "seeds_used", count=len(seeds), seeds=", ".join(f"`{s}`" for s in seeds))
        return ("\n".join(lines), gr.update(visible=bool(suggestion)), suggestion or {}, used_seed,
                *self.history_choices(lang))

    def clear_notices(self):
        """A new Generate: the last run's notices, Stop message, suggestion button and seed line go away."""
        return "", "", gr.update(visible=False), ""

    @staticmethod
    def random_seed():
        """🎲: the next run draws a new seed."""
        return S["seed"].default

    @staticmethod
    def reuse_seed(info):
        """♻: the seed the last video was made with (from its info), so the next run repeats it."""
        seed = (info or {}).get("seed") if isinstance(info, dict) else None
        return seed if seed is not None and S["seed"].check(seed) is None else gr.update()

    def use_suggestion(self, suggestion: dict):
        return [gr.update(value=suggestion[f]) if f in (suggestion or {}) else gr.update() for f in PRESET_FIELDS]

    def cancel(self, request: gr.Request) -> str:
        """Stop this browser session's (or API client's) running generation at its next step; others' jobs
        are not touched."""
        lang, owner = lang_of(request), session_of(request)
        if not owner:                  # a bare HTTP call: it may not stop anyone's job
            return text(lang, "no_session")
        if self.service.cancel(owner=owner):
            self._stopped_running.add(owner)     # leave_queue (next in the chain) must leave "Stopping…" alone
            return text(lang, "stopping")
        return text(lang, "nothing_running")

    def leave_queue(self, request: gr.Request):
        """The page's Stop, after cancel: when none of this session's jobs is running, a new token (its change
        makes the page drop this tab's job from the queue) and the message saying so; a running job ends at
        its next step with its own "Stopped" message instead. Decided from what cancel did, not from whether
        the job still runs: a job that stopped between the two calls must not read as one that left the queue."""
        owner = session_of(request)
        if owner in self._stopped_running or self.service.has_job(owner):
            self._stopped_running.discard(owner)
            return gr.update(), gr.update()
        return str(time.monotonic_ns()), text(lang_of(request), "left_queue")

    def server_info(self) -> dict:
        """What the web server process itself holds: it must never initialise CUDA or load weights."""
        torch = sys.modules.get("torch")
        return {
            "pid": os.getpid(),
            "torch_imported": torch is not None,
            "cuda_initialized": bool(torch is not None and torch.cuda.is_initialized()),
            "diffusers_imported": "diffusers" in sys.modules,
            "workers": self.service.workers(),
        }

    def model_status(self, request: gr.Request) -> tuple[str, str]:
        """The model line and the load report as the page shows them (Markdown, in the caller's language)."""
        lang = lang_of(request)
        state = self.service.model_state()
        return self._with_note(status_markdown(state, lang), request), report_markdown(state, lang)

    def _with_note(self, status: str, request) -> str:
        note, at = self._model_notes.get(session_of(request), ("", 0.0))
        return f"{status}\n\n{note}" if note and time.monotonic() - at < MODEL_NOTE_S else status

    # --- the model -------------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        """The models this app can switch to: name, title, family, kind (tiny/full), current."""
        return service_models(self.service)

    def model_picker(self, lang: str = "en"):
        models = service_models(self.service)
        return gr.update(choices=model_choices(models, lang), value=current_model(models))

    def on_family(self, request: gr.Request):
        """Page load and after a switch: the Model list, and every settings widget with the running family's
        rows (defaults, ranges, choices)."""
        lang = lang_of(request)
        return (self.model_picker(lang), *family_rows(running_family(self.service), lang))

    def _switch(self, spec) -> dict:
        if self.waiting_jobs():
            raise RequestError("model_busy", field="model")
        return self.service.switch_model(spec)

    def switch_model(self, spec, request: gr.Request) -> dict:
        """Switch the model (API): a name from `models`, a tiny variant, a repo id or a folder; the new status.
        Refused while a job runs or waits, or for a model this app does not know; the message names "model"."""
        lang = lang_of(request)
        try:
            done = self._switch(spec)
        except (RequestError, BusyError) as exc:
            raise error(lang, exc.text(lang)) from None
        except Exception:  # noqa: BLE001 - never a traceback
            log.exception("switch_model failed")
            raise error(lang, text(lang, "unexpected")) from None
        return {**{k: v for k, v in done.items() if k != "state"}, **status_data(done["state"], lang)}

    def switch_model_page(self, spec, request: gr.Request):
        """The page's Model list: switch, and say so (or why not) in the status area."""
        lang = lang_of(request)
        try:
            done = self._switch(spec)
            note = "✅ " + text(lang, "model_switched", title=done["family_title"], model=done["model"])
        except (RequestError, BusyError) as exc:
            note = "⚠️ " + text(lang, "model_switch_failed", error=exc.text(lang))
        except Exception:  # noqa: BLE001 - never a traceback
            log.exception("switch_model failed")
            note = "⚠️ " + text(lang, "model_switch_failed", error=text(lang, "unexpected"))
        self._model_notes[session_of(request)] = (note, time.monotonic())
        status, report = self.model_status(request)
        return status, report

    def status(self, request: gr.Request) -> dict:
        """The model's state as data for API clients: status, model, device, dtype, tiny, banner (once), text."""
        return status_data(self.service.model_state(), lang_of(request))

    def on_load(self, request: gr.Request):
        """Page load: device panel, presets with the recommended one preselected (its values fill the sliders)."""
        lang = lang_of(request)
        status = presets_status(self.service, None)
        choices = preset_choices(status, lang)
        chosen = status.get("recommended")
        fills = [gr.update()] * len(PRESET_FIELDS)
        if chosen:
            preset = next(p for p in status["presets"] if p["name"] == chosen)
            fills = [gr.update(value=preset["values"][f]) if f in preset["values"] else gr.update()
                     for f in PRESET_FIELDS]
        notice = "" if chosen or not status.get("presets") or status["presets"][0].get("status") is None \
            else text(lang, "no_preset_fits")
        choosers = [gr.update(choices=choice_list(s, lang)) for s in SETTINGS if s.choice_labels]
        return (device_markdown(_panel_call(self.service, "device_info"), lang), memory_html(self.memory(), lang),
                gr.update(choices=choices, value=chosen), *fills, notice, *self.history_choices(lang), *choosers)

    def on_image(self, image, preset_name, request: gr.Request):
        """A new image changes the aspect ratio, hence memory: refresh the presets' status. The page holds its
        upload from now on (and lets go of the one it showed before)."""
        self.uploads.hold(session_of(request), image, only=True)
        lang = lang_of(request)
        status = presets_status(self.service, header_size(image))
        return gr.update(choices=preset_choices(status, lang), value=preset_name)

    def on_preset(self, preset_name, image):
        if not preset_name or preset_name == CUSTOM_PRESET:
            return [gr.update()] * len(PRESET_FIELDS)
        status = presets_status(self.service, header_size(image))
        preset = next((p for p in status.get("presets", []) if p["name"] == preset_name), None)
        values = (preset or {}).get("values", {})
        return [gr.update(value=values[f]) if f in values else gr.update() for f in PRESET_FIELDS]

    def on_sliders(self, preset_name, image, *values):
        """The user moved a slider: the preset list says "Custom" once the values are no longer the preset's."""
        if not preset_name or preset_name == CUSTOM_PRESET:
            return gr.update()
        status = presets_status(self.service, header_size(image))
        preset = next((p for p in status.get("presets", []) if p["name"] == preset_name), None)
        wanted = (preset or {}).get("values", {})
        same = all(f not in wanted or _same_value(wanted[f], v) for f, v in zip(PRESET_FIELDS, values))
        return gr.update() if same else gr.update(value=CUSTOM_PRESET)

    def on_estimate(self, image, resolution, num_frames, fps, num_inference_steps, guidance_scale, request: gr.Request):
        values = dict(resolution=resolution, num_frames=num_frames, fps=fps,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
        size = header_size(image)
        return estimate_markdown(_panel_call(self.service, "estimate", values, size), lang_of(request))

    def memory(self) -> dict:
        """Memory figures of the GPU (or RAM on CPU): allocated, reserved, driver-used, total."""
        return _panel_call(self.service, "memory") or {}

    def clear_cache(self) -> dict:
        """Free cached GPU memory; returns the figures before and after."""
        return _panel_call(self.service, "clear_cache") or {}

    def unload(self) -> dict:
        """Unload the model and clear the cache; returns the figures before and after."""
        return _panel_call(self.service, "unload") or {}

    def render_memory(self, data: dict, request: gr.Request):
        lang = lang_of(request)
        return memory_html(data, lang), device_markdown(_panel_call(self.service, "device_info"), lang)

    def history(self) -> list[dict]:
        """Past outputs, newest first: video_path, parameters, seed, timings_s (from the sidecars)."""
        return self.service.history()

    def history_choices(self, lang: str = "en"):
        """The History tab's list (newest chosen), its gallery of first-frame thumbnails, and the boxes to tick
        for deleting several."""
        entries = self.service.history()
        return (gr.update(choices=[(history_label(e, lang), e["video_path"]) for e in entries],
                          value=entries[0]["video_path"] if entries else None),
                gr.update(value=self._thumbnails(entries, lang)),
                gr.update(choices=[(history_label(e, lang), e["video_path"]) for e in entries], value=[]))

    @staticmethod
    def _thumbnails(entries: list[dict], lang: str) -> list[tuple[str, str]]:
        from i2v import exports

        shown = []
        for entry in entries:      # history.list_outputs offers only our own files; thumbnail() makes sure again
            try:
                shown.append((str(exports.thumbnail(Path(entry["video_path"]))), history_label(entry, lang)))
            except (OSError, RuntimeError, StopIteration, ValueError):   # an unreadable video: no picture
                log.warning("no thumbnail for %s", entry["video_path"], exc_info=True)
        return shown

    def on_gallery_select(self, evt: gr.SelectData):
        """A click on a thumbnail chooses that video in the list (and so its details, preview and buttons)."""
        caption = (evt.value or {}).get("caption") if isinstance(evt.value, dict) else None
        entries = self.service.history()
        chosen = next((e for e in entries if history_label(e, "en") == caption or history_label(e, "zh") == caption),
                      entries[evt.index] if isinstance(evt.index, int) and evt.index < len(entries) else None)
        return chosen["video_path"] if chosen else gr.update()

    def _entry(self, path):
        return next((e for e in self.service.history() if e["video_path"] == path), None)

    def on_history_pick(self, path, request: gr.Request):
        entry = self._entry(path) if path else None
        hide = gr.update(visible=False)
        return (history_markdown(entry, lang_of(request)), entry["video_path"] if entry else None, hide)

    def reuse(self, path, request: gr.Request):
        """History's Reuse: the input image and every setting of that video back on the Generate tab, except
        the seed, which goes back to random (the notice says which seed made the video, to repeat it exactly)."""
        entry = self._entry(path) if path else None
        lang = lang_of(request)
        if not entry:
            return [*[gr.update()] * (1 + len(SETTINGS)), text(lang, "history_pick_first"), gr.update()]
        family, made_by = running_family(self.service), entry_family(entry)
        if made_by is not family:       # its values belong to another model: nothing applied, the user told
            models = service_models(self.service)
            kind = "tiny" if (entry.get("load_report") or {}).get("kind") == "tiny" else "full"
            same = [m for m in models if made_by is not None and m.get("family") == made_by.name]
            choice = next((m for m in same if m.get("kind") == kind), same[0] if same else None)
            notice = text(lang, "reuse_other_family", title=made_by.title if made_by else "?",
                          model=str(entry.get("model") or "?")[:80], running=family.title,
                          choice=choice["name"] if choice else (made_by.name if made_by else "?"))
            return [*[gr.update()] * (1 + len(SETTINGS)), notice, gr.Tabs(selected="generate")]
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            params = {}
        valid = {s.name: params[s.name] for s in family.rules.settings()     # the family's own ranges
                 if s.name in params and s.check(params[s.name]) is None and family.rules.check_frames(
                     params[s.name] if s.name == "num_frames" else None) is None}   # sidecars are untrusted
        valid["seed"] = S["seed"].default
        updates = [gr.update(value=valid[s.name]) if s.name in valid else gr.update() for s in SETTINGS]
        seed = entry.get("seed")
        notice = text(lang, "reused", seed=seed) if S["seed"].check(seed) is None else text(lang, "reused_no_seed")
        image = gr.update(value=entry["input_image"]) if entry.get("input_image") else gr.update()
        return [image, *updates, notice, gr.Tabs(selected="generate")]

    def export_gif(self, path, request: gr.Request):
        """The chosen video as an animated GIF (made once, kept beside the MP4, deleted with it)."""
        return self._export(path, "gif", lang_of(request))

    def export_frames(self, path, request: gr.Request):
        """The chosen video's frames as PNG files in one zip."""
        return self._export(path, "frames", lang_of(request))

    def _export(self, path, kind: str, lang: str):
        from i2v import exports, history

        if not path:
            return None, text(lang, "history_pick_first")
        try:
            made = exports.export(history.resolve_output(self.service.outputs_dir, path), kind)
        except ValueError:                 # not an MP4 in outputs/: nothing is read or written
            log.warning("refused to export %r", path)
            return None, text(lang, "refused", name=Path(str(path)).name)
        except OSError:
            log.exception("export failed")
            return None, text(lang, "export_failed")
        return str(made), text(lang, "exported", name=made.name)

    def ask_delete(self, path, selected, request: gr.Request):
        """Delete asks first: the ticked videos when any are ticked, else the chosen one."""
        lang = lang_of(request)
        targets = list(selected or []) or ([path] if path else [])
        if not targets:
            return gr.update(visible=False), text(lang, "history_pick_first")
        if len(targets) > 1:
            return gr.update(visible=True), text(lang, "confirm_many", count=len(targets))
        return gr.update(visible=True), text(lang, "confirm_question", name=Path(targets[0]).name)

    def confirm_delete(self, path, selected, request: gr.Request):
        lang = lang_of(request)
        messages = []
        for target in list(selected or []) or [path]:
            name = Path(target or "?").name
            try:
                removed = delete_output(self.service.outputs_dir, target or "")
                messages.append(text(lang, "deleted", name=name) if removed else text(lang, "missing", name=name))
            except ValueError:
                log.warning("refused to delete %r", target)
                messages.append(text(lang, "refused", name=name))
        return (gr.update(visible=False), " ".join(messages), *self.history_choices(lang))
