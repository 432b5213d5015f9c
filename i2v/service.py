"""Orchestration of one job at a time: validate -> run -> save MP4 + sidecar; cancel; history.

The UI, the API and the CLI all call GenerationService.generate; it never shows a traceback to a user:
bad input raises RequestError, a stop raises GenerationCancelled, anything else GenerationFailed (details logged).
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from i2v import exports, oom_log, sidecar, video
from i2v.image_fit import fit_image, load_image, too_wide  # noqa: F401 - public here too
from i2v.job_slots import BUSY_WAIT_S, JobSlots
from i2v.memory_figures import memory_figures
from i2v.oom_log import OOM_LOG_NAME  # noqa: F401 - public here too
from i2v.core.errors import BusyError, GenerationCancelled, GenerationFailed, OutOfMemoryFailure, RequestError
from i2v.core.plans import PlanError, check_forced
from i2v.core.request import GenerationRequest, build_request
from i2v.core.settings import MAX_SEED, SETTINGS
from i2v.advisor import Advisor
from i2v.runner import FallbackPolicy, LocalRunner, READY
from i2v.core.units import GIB
from i2v.preview_board import PreviewBoard, takes_previews
from i2v.progress import (  # noqa: F401 - public here too
    PHASE_UNITS, PROGRESS_SPANS, ProgressUpdate, progress_fraction, update_for)

log = logging.getLogger(__name__)


@dataclass
class GenerationResult:
    video_path: Path
    sidecar_path: Path
    request: GenerationRequest
    seed: int
    model: str
    timings: dict[str, float]
    load_report: dict | None
    adjustments: list[dict] = field(default_factory=list)
    attempts: int = 1
    banner: str | None = None
    fallbacks: list[str] = field(default_factory=list)
    denoise_steps_run: int = 0
    input_notes: list = field(default_factory=list)      # I2VErrors: how the input image was converted
    worker: dict | None = None                            # the machine and card that ran it (Ray backend)

    written: dict = field(default_factory=dict)             # the sidecar, as written beside the video

    def info(self) -> dict[str, Any]:
        """The JSON info object returned by the API: the sidecar written beside the video (i2v.sidecar)."""
        return dict(self.written)


def resolve_seed(seed: int) -> int:
    return secrets.randbelow(MAX_SEED + 1) if seed is None or seed < 0 else int(seed)


class GenerationService:
    def __init__(self, runner: LocalRunner, outputs_dir: Path, logs_dir: Path | None = None,
                 policy: FallbackPolicy | None = None, time_budget_s: float | None = None,
                 model_figures: str = "running"):
        """model_figures: "running" plans with the figures of the model that runs (its own traced profile,
        i2v.profiles); "full-size" with the full-size I2VGen-XL's whatever runs (tests that route or fit the tiny
        model as if it were the real one)."""
        if model_figures not in ("running", "full-size"):
            raise ValueError(f"model_figures must be 'running' or 'full-size', got {model_figures!r}")
        self.runner = runner
        self.outputs_dir = Path(outputs_dir).resolve()
        self.logs_dir = Path(logs_dir).resolve() if logs_dir else None
        self.policy = policy or FallbackPolicy()
        self._sources: dict[tuple, Any] = {}             # what the runner runs -> i2v.profiles.ModelSource
        self.advisor = Advisor(holder_pids=runner.pids, time_budget_s=time_budget_s,
                               model_source=self.model_source if model_figures == "running" else None)
        self.last_activity = time.monotonic()
        self.busy_wait_s = BUSY_WAIT_S
        self.slots = JobSlots(runner.capacity)
        self._tiny_step_s: float | None = None         # the tiny model's measured seconds per denoising step
        self.previews = PreviewBoard()                  # live preview: per session, its interval and latest strip

    # --- state -------------------------------------------------------------------------------------------
    def model_state(self) -> dict:
        return self.runner.state().as_dict()

    def workers(self) -> list[dict]:
        return self.runner.describe()

    def is_busy(self) -> bool:
        return self.slots.is_busy()

    def has_job(self, owner: str | None) -> bool:
        """Whether this owner (a browser session or API client) has a job running now."""
        return self.slots.has_job(owner)

    def cancel(self, owner: str | None) -> bool:
        """Stop the jobs of this owner (a browser session or API client) at their next cancel point; others'
        jobs are never touched. A call that names no owner acts on nothing (a bare HTTP call without a session
        must not stop anyone's job). False if there was none to stop."""
        if not owner:
            return False
        return self._cancel_where(lambda who: who == owner, "of one session")

    def cancel_all(self) -> bool:
        """Stop every job (the CLI's Ctrl+C, shutdown, a local user's explicit cancel of another tab's job)."""
        return self._cancel_where(lambda who: True, "of every session")

    def _cancel_where(self, chosen, whose: str) -> bool:
        jobs = self.slots.jobs_where(chosen)
        for job in jobs:
            self.runner.cancel(job)
        if jobs:
            log.info("cancel requested for %d job(s) %s", len(jobs), whose)
        return bool(jobs)

    def cancel_job(self, job: str) -> bool:
        """Stop one running job, whoever started it (the queue panel's cancel, checked by its caller)."""
        known = self.slots.knows(job)
        if known:
            self.runner.cancel(job)
            log.info("cancel requested for job %s from the queue panel", job)
        return known

    def running_jobs(self) -> list[dict]:
        """The jobs running now: id, who started it (None: the CLI), when (monotonic seconds), its settings."""
        return self.slots.running()

    # --- the model ---------------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        """The models the page and the API offer (i2v.model_choice: local only, never the network)."""
        from i2v import model_choice

        state = self.runner.state()
        return model_choice.choices(state.spec, state.report)

    def switch_model(self, spec) -> dict:
        """Run another model from the next job on: checked like --model (RequestError naming "model"), refused
        while a job runs or waits (BusyError), the old model unloaded (its workers replaced, all memory back)."""
        from i2v import model_choice

        choice = model_choice.check(spec)
        switch = getattr(self.runner, "switch_model", None)
        if switch is None:
            raise RequestError("model_switch_unsupported", field="model", value=spec, detail=type(self.runner).__name__)
        with self.slots.all_held():     # no job runs, and none starts (or waits to) while the workers change
            released = switch(spec.strip()) or 0
            self._sources.clear()                    # what the advisor plans with follows the new model
            self._tiny_step_s = None
            self.advisor._measured_tflops = None     # noqa: SLF001 - the old model's speed says nothing of this one
        family = self.advisor.family()
        log.info("model switched to %s (%s); %.2f GiB released", spec, family.name, released / GIB)
        return {"switched": True, "model": spec.strip(), "family": family.name, "family_title": family.title,
                "kind": choice.kind, "released_gib": round(released / GIB, 2), "state": self.model_state()}

    # --- memory ------------------------------------------------------------------------------------------
    def device_info(self) -> dict:
        return {**self.advisor.device_info(), "workers": self.workers()}

    def presets_status(self, image_size: tuple[int, int] | None = None) -> dict:
        return self.advisor.presets_status(image_size, estimate=self.estimate)

    def model_source(self):
        """The model whose figures the advisor gives (i2v.profiles.ModelSource): the loaded one, from its load
        report, else the one the runner's --model will load (resolved once, as the loader resolves it)."""
        from i2v import profiles

        state = self.runner.state()
        report = state.report or {}
        key = (("loaded", report["kind"], report.get("model"), report.get("family")) if report.get("kind")
               else ("spec", state.spec))
        found = self._sources.get(key)
        if found is None:
            found = (profiles.source_for(report["kind"], report.get("model") or "", report.get("family"))
                     if key[0] == "loaded" else profiles.resolve_spec(state.spec))
            self._sources[key] = found
        return found

    def estimate(self, values: dict, image_size: tuple[int, int] | None = None) -> dict:
        """The live estimate, with the figures of the model that runs (and, for another than the full-size
        I2VGen-XL, what that one would need: "full_size"); with the tiny test model, once it has run, the time
        is its own measured seconds per step (speed "measured")."""
        estimate = self.advisor.estimate(values, image_size)
        steps = values.get("num_inference_steps")
        if self._tiny_step_s and isinstance(steps, (int, float)) and not estimate.get("error"):
            estimate.update(seconds_per_step=round(self._tiny_step_s, 3), speed="measured",
                            seconds_estimate=round(self._tiny_step_s * steps, 1))
        return estimate

    def memory(self) -> dict:
        """Current figures: the device as the server sees it, plus each worker's own view when it is idle."""
        device = self.advisor.device()
        figures = memory_figures(device.as_dict())
        workers = self._query_workers("memory")
        if workers:
            figures["workers"] = [memory_figures(w) if w else {"busy": True} for w in workers]
        return figures

    def clear_cache(self) -> dict:
        """gc + empty_cache in the worker(s); before/after figures (RAM on a machine without a GPU)."""
        results = self._query_workers("clear_cache")
        if not results or all(r is None for r in results):
            return {"cleared": False, "message": "the generator is busy (loading the model or generating); try again when it is idle",
                    **self.memory()}
        result = next(r for r in results if r is not None)
        return {"cleared": True, **result, "after": self.memory()}

    def unload(self) -> dict:
        """Unload the model and free everything by replacing the worker process (or dropping the pipeline)."""
        if self.is_busy():
            return {"unloaded": False, "message": "a generation is running; press Stop first"}
        before = self.memory()
        released = self.runner.unload() or 0
        return {"unloaded": True, "released_bytes": released, "released_gib": round(released / GIB, 2),
                "before": before, "after": self.memory()}

    def unload_if_idle(self, idle_minutes: float) -> dict | None:
        """Unload the model when no job ran for idle_minutes (the optional idle unload); None if not done."""
        loaded = self.runner.state().status == "ready"
        if not loaded or self.is_busy() or time.monotonic() - self.last_activity < idle_minutes * 60:
            return None
        log.info("unloading the model after %.0f idle minutes", idle_minutes)
        return self.unload()

    def _query_workers(self, action: str) -> list[dict | None]:
        return self.runner.query(action)

    # --- generating --------------------------------------------------------------------------------------
    def generate(self, image, values: dict[str, Any], progress: Callable[[ProgressUpdate], None] | None = None,
                 out_path: Path | None = None, plan: dict[str, Any] | None = None,
                 owner: str | None = None) -> GenerationResult:
        """Run one job. plan: plan parts the caller forces (the rest is chosen to fit); owner: who may Stop it
        (a browser session or API client; None: anyone, as from the CLI)."""
        from i2v.image_input import open_image

        notes: list = []
        if image is None or isinstance(image, (str, Path)):   # a path or data: URL: opened and checked here
            image, notes = open_image(image)
        else:
            image = image.convert("RGB")
        source = self.model_source()
        if source is not None and source.unavailable and not (self.runner.state().report or {}).get("kind"):
            raise RequestError("model_unavailable", field="model", value=self.runner.state().spec,
                               detail=source.unavailable)
        rules = self.advisor.family().rules        # the running model's family: its rows and rules
        request = build_request(image.size, rules, **values)
        image, fitted = fit_image(image, request)
        notes = [*notes, *fitted]
        try:
            forced = check_forced(plan or {})
        except PlanError as exc:
            raise RequestError(exc.key, **exc.params) from None     # its own key: said in the reader's language
        if rules.prompt_required and not request.prompt:
            raise RequestError("prompt_missing", field="prompt")
        if out_path is not None and Path(out_path).exists():
            raise RequestError("out_path_exists", path=str(out_path))
        values = {s.name: getattr(request, s.name) for s in SETTINGS}
        try:     # a job finishing its Stop: wait for its slot, then answer busy
            with self.slots.job(owner, values, self.busy_wait_s) as job:
                placed = self.runner.place(job, request, self._fitter(forced))
                try:
                    return self._generate_locked(image, request, self.previews.tap(owner, progress), out_path,
                                                 forced, notes, job, placed)
                finally:
                    self.runner.release(job)
                    self.previews.clear(owner)
        finally:
            self.last_activity = time.monotonic()

    def _fitter(self, forced):
        """For runners that choose between cards: fit a request to a card and predict its run's seconds."""
        def fit_on(request, device):
            fitted = self.advisor.fit(request, forced, device, carry=True)   # its worker falls back along it
            return fitted, self.advisor.seconds_for(fitted.request, device or self.advisor.device())
        return fit_on

    def _generate_locked(self, image, request, progress, out_path, forced, notes, job,
                         placed=(None, None)) -> GenerationResult:
        seed = resolve_seed(request.seed)
        request = request.replace(seed=seed)
        adjustments = []
        fitted, card = placed
        if card is not None:      # a card chosen among several (Ray): fitted to that card
            if fitted is None:
                raise RequestError("device_cannot_run", detail_key="no_card_fits", card=card.get("name"))
            request, adjustments = fitted.request.replace(seed=seed), [asdict(a) for a in fitted.adjustments]
        else:
            request, found = self.advisor.clamp(request, forced)
            adjustments = [asdict(a) for a in found]
            for adjustment in found:
                log.info("adjusted %s", adjustment)
        log.info("generate: %s", json.dumps(request.as_dict(), ensure_ascii=False))

        def on_event(phase: str, index: int, total: int, preview: bytes | None = None) -> None:
            if phase == "attempt" and index == 1:
                return
            if progress is not None:
                progress(update_for(phase, index, total, preview))

        if self.runner.state().status != READY:   # the first run (or one after Unload) loads the weights first
            on_event("load", 0, 0)
        try:
            known = sidecar.base(seed, adjustments, [note.text("en") for note in notes])
            every = getattr(progress, "every", 0) if takes_previews(self.runner) else 0   # the caller's page asked
            output = self.runner.run(image, request, seed, on_event, out_dir=self.outputs_dir, out_path=out_path,
                                     policy=self.policy, job=job, sidecar=known,
                                     **({"preview_every": every} if every else {}))
        except OutOfMemoryFailure as exc:
            self._log_ooms(exc.report.get("attempts", []), outcome="failed", suggestion=exc.suggestion)
            raise
        except (GenerationCancelled, RequestError, GenerationFailed):
            raise
        except Exception as exc:
            log.exception("generation failed")
            raise GenerationFailed("generation_failed", detail=f"{type(exc).__name__}: {exc}") from exc
        path, info = output.video_path, output.info or {}
        try:
            exports.save_input(image, path)            # History's Reuse puts this image back
        except OSError:                                # the video stands without it
            log.warning("could not keep the input image of %s", path, exc_info=True)
        if output.attempts:
            self._log_ooms(output.attempts, outcome=f"recovered by attempt {len(output.attempts) + 1}")
        ran = output.request or request
        if output.timings.get("denoise") and output.denoise_steps_run:
            if self._is_tiny_model():     # its speed says nothing of the real model's FLOPs: kept apart
                self._tiny_step_s = output.timings["denoise"] / output.denoise_steps_run
            else:
                self.advisor.record_denoise(ran, output.timings["denoise"], output.denoise_steps_run)
        timings = info.get("timings_s", output.timings)
        result = GenerationResult(
            video_path=path, sidecar_path=video.sidecar_path(path), request=ran, seed=seed,
            model=info.get("model"), timings=timings, load_report=info.get("load_report"),
            banner=info.get("warning"), adjustments=info.get("adjustments", adjustments),
            attempts=info.get("attempts", 1), fallbacks=info.get("fallbacks", []),
            denoise_steps_run=output.denoise_steps_run, input_notes=notes, worker=output.worker, written=info,
        )
        log.info("wrote %s and its sidecar in %.2fs", path, timings.get("total", 0))
        return result

    def _is_tiny_model(self) -> bool:
        """The tiny test model runs: its measured speed is kept apart from the real model's."""
        state = self.runner.state()
        from i2v.models import tiny_choices

        return state.spec in tiny_choices() or (state.report or {}).get("kind") == "tiny"

    def _log_ooms(self, attempts: list[dict], outcome: str, suggestion: dict | None = None) -> None:
        """Append each OOM of a job to logs/oom.jsonl (i2v.oom_log)."""
        oom_log.append(self.logs_dir, attempts, outcome, suggestion)

    # --- history -----------------------------------------------------------------------------------------
    def history(self, limit: int = 50) -> list[dict]:
        """Newest first: past outputs in outputs/ with their (checked) sidecar data."""
        from i2v import history

        return history.list_outputs(self.outputs_dir, limit)


def result_summary(result: GenerationResult) -> dict:
    """Compact, JSON-safe form for the CLI's --json."""
    data = result.info()
    data["video_path"] = str(result.video_path)
    data["sidecar_path"] = str(result.sidecar_path)
    return data


__all__ = ["GenerationService", "GenerationResult", "ProgressUpdate", "BusyError", "GenerationFailed",
           "GenerationCancelled", "RequestError", "load_image", "result_summary"]
