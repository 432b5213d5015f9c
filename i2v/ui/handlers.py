"""What each UI event does: translate between widget values and the service, in the caller's language.

`Handlers(service)` holds no widgets: its methods take plain values plus the request (anything with
`headers` and `session_hash`) and return values or `gr.update(...)` dicts, so tests call them directly with a
stand-in service and request. The layout module wires them to components.
"""
from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time

import gradio as gr

from i2v.core.errors import BusyError, GenerationCancelled, GenerationFailed, OutOfMemoryFailure, RequestError
from i2v.core.settings import MAX_BATCH, SETTINGS
from i2v.core.settings import SETTINGS_BY_NAME as S
from i2v.i18n import lang_of, text
from i2v.image_input import header_size
from i2v.service import ProgressUpdate
from i2v.ui.event_helpers import (PRESET_FIELDS, StepClock, batch_count, choice_list,  # noqa: F401 - re-exported
                                  consecutive_seeds, error, same_value, session_of, settings_function)
from i2v.ui.budget_hold import install as install_budget_hold
from i2v.ui.history_events import HistoryEvents
from i2v.ui.liveness import CallerWatch
from i2v.ui.model_events import ModelEvents, family_rows, running_family, service_models  # noqa: F401
from i2v.ui.output_files import delete_output, gradio_cached_copy  # noqa: F401 - re-exported
from i2v.ui.uploads import Uploads
from i2v.ui.format import (CUSTOM_PRESET, adjustment_text, duration_text, mem, clean_message, device_markdown,
                           estimate_markdown, memory_html, phase_text, plan_text, preset_choices, progress_text,
                           values_text)

log = logging.getLogger(__name__)


def presets_status(service, image_size) -> dict:
    """The presets with their status on this device for an image of image_size, and the recommended one."""
    return service.presets_status(image_size)


class Handlers(HistoryEvents, ModelEvents):
    """The UI's event handlers over one GenerationService (one instance per page build)."""

    def __init__(self, service):
        self.service = service
        self._outcomes: dict[str, dict] = {}   # session -> what the last generate produced (read by the .then step)
        self._outcomes_lock = threading.Lock()
        self.uploads = Uploads()             # build_ui tells it which uploads the waiting jobs name
        self.waiting_jobs = lambda: 0        # build_ui: how many generate jobs wait in the queue
        self._model_notes: dict[str | None, tuple[str, float]] = {}   # session -> its last switch's outcome
        self._stopped_running: set[str] = set()    # sessions whose Stop just reached a running job
        self._budgets: dict[str | None, float] = {}  # session -> the budget (GiB) its last estimate showed
        self.budget_hold = install_budget_hold(getattr(service, "advisor", None))   # one stable budget

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
        return self.service.device_info().get("kind") or "cuda"

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
                desc += " · " + text(lang, "eta", time=duration_text(left, lang))
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
            if isinstance(exc, OutOfMemoryFailure) or suggestion is not None:
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
        device = self._device_kind()
        if isinstance(info, dict) and isinstance(info.get("plan"), dict):   # the sidecar's words assume a GPU
            info = {**info, "plan_words": plan_text(info["plan"], "en", device)}
        # what the run did, for the notice area under the video (cleared by the next Generate): no pop-ups,
        # whose headers Gradio writes in English
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
        stopped = bool(outcome.get("stopped"))     # Stop's "Stopping…" becomes "Stopped."; the old video goes
        return ("\n".join(lines), gr.update(visible=bool(suggestion)), suggestion or {}, used_seed,
                *self.history_choices(lang), text(lang, "stopped_short") if stopped else gr.update(),
                None if stopped else gr.update())

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
        return (device_markdown(self.service.device_info(), lang), memory_html(self.memory(), lang, self._device_kind()),
                gr.update(choices=choices, value=chosen or (CUSTOM_PRESET if choices else None)), *fills, notice, *self.history_choices(lang), *choosers)

    def on_image(self, image, preset_name, request: gr.Request):
        """A new image changes the aspect ratio, hence memory: refresh the presets' status. The page holds its
        upload from now on (and lets go of the one it showed before)."""
        self.uploads.hold(session_of(request), image, only=True)
        lang = lang_of(request)
        status = presets_status(self.service, header_size(image))
        choices = preset_choices(status, lang)
        return gr.update(choices=choices, value=preset_name or (CUSTOM_PRESET if choices else None))

    def on_preset(self, preset_name, image):
        if not preset_name or preset_name == CUSTOM_PRESET:
            return [gr.update()] * len(PRESET_FIELDS)
        status = presets_status(self.service, header_size(image))
        preset = next((p for p in status.get("presets", []) if p["name"] == preset_name), None)
        values = (preset or {}).get("values", {})
        return [gr.update(value=values[f]) if f in values else gr.update() for f in PRESET_FIELDS]

    def on_sliders(self, preset_name, image, *values):
        """The user moved a slider: the preset list says "Custom" once the values are no longer the preset's."""
        if not preset_name:            # never blank: a box that showed nothing now says Custom
            return gr.update(value=CUSTOM_PRESET)
        if preset_name == CUSTOM_PRESET:
            return gr.update()
        status = presets_status(self.service, header_size(image))
        preset = next((p for p in status.get("presets", []) if p["name"] == preset_name), None)
        wanted = (preset or {}).get("values", {})
        same = all(f not in wanted or same_value(wanted[f], v) for f, v in zip(PRESET_FIELDS, values))
        return gr.update() if same else gr.update(value=CUSTOM_PRESET)

    def on_estimate(self, image, resolution, num_frames, fps, num_inference_steps, guidance_scale, request: gr.Request):
        values = dict(resolution=resolution, num_frames=num_frames, fps=fps,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale)
        estimate = self.service.estimate(values, header_size(image))
        session, budget = session_of(request), (estimate or {}).get("available_gib")
        before = self._budgets.get(session)
        if budget is not None:
            self._budgets[session] = budget
        moved = (before, budget) if before is not None and budget is not None and before != budget else None
        return estimate_markdown(estimate, lang_of(request), moved)

    def memory(self) -> dict:
        """Memory figures of the GPU (or RAM on CPU): allocated, reserved, driver-used, total."""
        return self.service.memory()

    def clear_cache(self) -> dict:
        """Free cached GPU memory; returns the figures before and after."""
        return self.service.clear_cache()

    def unload(self) -> dict:
        """Unload the model and clear the cache; returns the figures before and after."""
        return self.service.unload()

    def render_memory(self, data: dict, request: gr.Request):
        lang = lang_of(request)
        return memory_html(data, lang, self._device_kind()), device_markdown(self.service.device_info(), lang)
