"""Owns the loaded pipeline in this process: lazy/background loading, model state, and running one job with
phase events and cooperative cancel. The service talks to a runner; it never touches the pipeline itself.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from i2v import guard
from i2v import pipeline as pl
from i2v import sidecar as sidecar_info
from i2v import video
from i2v.core.errors import GenerationCancelled, OutOfMemoryFailure
from i2v.core.request import GenerationRequest
from i2v.core.settings import AUTO_FALLBACK, MAX_ATTEMPTS
from i2v.preview_tap import PreviewTap

log = logging.getLogger(__name__)

EventCallback = Callable[..., None]   # (phase, index, total); "preview" events add the JPEG strip (i2v.preview)

NOT_LOADED, LOADING, READY, FAILED = "not loaded", "loading", "ready", "failed"


@dataclass
class ModelState:
    status: str = NOT_LOADED
    spec: str = "auto"
    message: str = ""
    banner: str | None = None
    report: dict | None = None

    def as_dict(self) -> dict:
        return {"status": self.status, "spec": self.spec, "message": self.message,
                "banner": self.banner, "report": self.report}


@dataclass
class RunOutput:
    video_path: Path
    timings: dict[str, float] = field(default_factory=dict)
    request: GenerationRequest | None = None      # what finally ran (after fallbacks)
    attempts: list[dict] = field(default_factory=list)   # the failed attempts before it
    denoise_steps_run: int = 0
    worker: dict | None = None          # where it ran, when the runner chooses between machines (Ray)
    info: dict | None = None            # the sidecar written beside the video (when asked for)


@dataclass
class FallbackPolicy:
    """Retry down the fallback ladder after an OOM (auto), at most max_attempts attempts in all."""
    auto: bool = AUTO_FALLBACK
    max_attempts: int = MAX_ATTEMPTS


def oom_failure(request: GenerationRequest, attempts: list[dict], dtype: str, device: str,
                family: str | None = None) -> OutOfMemoryFailure:
    """The failure after the last attempt: what failed, its report, and a configuration predicted to fit the
    memory measured after cleanup (None when nothing smaller is). dtype and family are not needed any more
    (the prediction came with the request); kept for callers."""
    last = attempts[-1]
    free = last["memory_after"].get("budget_bytes") or last["memory_after"].get("free_bytes") or 0
    suggestion = suggest_after_oom(request, free)
    report = {"phase": last["phase"], "requested": request.as_dict(), "attempts": attempts,
              "memory_before": last["memory_before"], "memory_after": last["memory_after"],
              "free_bytes": free, "suggestion": suggestion}
    return OutOfMemoryFailure.of(last["phase"], len(attempts), device, report, suggestion)


def fallback_after_oom(request: GenerationRequest, phase: str):
    """One step down the ranking the request carries (decided by the server's clamp, forced parts fixed);
    after a decode-time OOM only what acts on the decode changes (the sampled latents are kept). No memory
    model is loaded here: a request without a ranking has no fallback (i2v.core.fallback.ranked_request)."""
    from i2v.core import fallback

    return fallback.carried_next(request, phase)


def suggest_after_oom(request: GenerationRequest, free_bytes: int) -> dict | None:
    """Below what failed (the prediction evidently was optimistic), the fastest carried configuration predicted
    to fit free_bytes, as plain values (sliders + memory knobs); None when none is."""
    from i2v.core import fallback

    found = fallback.carried_suggestion(request, free_bytes)
    return found.as_dict() if found is not None else None


def start_in_worker(model_spec: str, environ: dict[str, str] | None = None) -> "LocalRunner":
    """The start-up every worker shares (a local worker process, a Ray actor): its environment in place and
    CUDA prepared before torch starts it, then a LocalRunner (the model loads on first use)."""
    import os

    from i2v import gpu

    os.environ.update(environ or {})
    gpu.prepare_cuda_environment(os.environ)
    return LocalRunner(model_spec)


@runtime_checkable
class Runner(Protocol):
    """What the service asks of whatever runs its jobs: LocalRunner (this process: tests, benchmarks), WorkerRunner
    (one supervised worker process) and WorkerPool (one worker per GPU)."""

    capacity: int                                   # jobs it can run at once

    def state(self) -> "ModelState": ...
    def start_loading(self) -> Any: ...
    def run(self, image, request: GenerationRequest, seed: int, on_event: EventCallback | None = None,
            out_dir: Path | None = None, out_path: Path | None = None, policy: "FallbackPolicy | None" = None,
            job: str | None = None, sidecar: dict | None = None, preview_every: int = 0) -> "RunOutput": ...
    def cancel(self, job: str | None = None) -> None: ...
    def unload(self) -> int | None: ...
    def query(self, action: str) -> list[dict | None]: ...   # memory | clear_cache, per worker (None: busy)
    def describe(self) -> list[dict]: ...                  # per worker: pid, state, restarts
    def pids(self) -> tuple[int, ...]: ...                 # processes holding the model's memory
    def place(self, job: str, request: GenerationRequest, fitter) -> tuple: ...   # pick a card (Ray): (fit, card)
    def release(self, job: str) -> None: ...
    def shutdown(self) -> None: ...


class LoadsInBackground:
    """A runner's state() and start_loading(): `load()` in a background thread so the page is up at once. A
    failed load is already recorded in `_state` and the log, so the thread lets the errors named in
    `_load_errors` end it quietly."""
    _loader_name = "i2v-model-loader"
    _load_errors: tuple[type[BaseException], ...] = (Exception,)
    _state: ModelState

    def state(self) -> ModelState:
        return self._state

    def start_loading(self) -> threading.Thread:
        thread = threading.Thread(target=self._load_quietly, name=self._loader_name, daemon=True)
        thread.start()
        return thread

    def _load_quietly(self) -> None:
        try:
            self.load()
        except self._load_errors:
            pass

    def load(self) -> Any:
        raise NotImplementedError


class LocalRunner(LoadsInBackground):
    """Runs generations in this process with a lazily loaded pipeline (a Runner)."""

    capacity = 1
    # Stop checked before every layer inside a step (i2v.cancel_points), not only between steps. Off only to
    # measure what it saves (bench/stop_latency.py); per instance, or for a whole worker process on the class.
    in_step_cancel = True

    def __init__(self, model_spec: str = "auto", device: str | None = None):
        self._device = device
        self._loaded: pl.LoadedPipeline | None = None
        self._state = ModelState(spec=model_spec)
        self._load_lock = threading.Lock()
        self.cancel_event = threading.Event()

    # --- model state -------------------------------------------------------------------------------------
    def load(self) -> pl.LoadedPipeline:
        with self._load_lock:
            if self._loaded is not None:
                return self._loaded
            self._state.status, self._state.message = LOADING, "choosing and loading the model"
            try:
                choice = pl.choose_model(self._state.spec)
                self._state.banner = choice.banner
                if choice.banner:
                    log.warning(choice.banner)
                self._state.message = f"loading {choice.source}"
                from i2v import gpu

                fraction = gpu.enforce_vram_limit(gpu.vram_limit_bytes())
                if fraction is not None:
                    log.info("VRAM limit enforced: at most %.1f%% of the GPU", fraction * 100)
                self._loaded = pl.load_pipeline(choice, self._device)
            except Exception as exc:
                self._state.status = FAILED
                self._state.message = f"model could not be loaded: {type(exc).__name__}: {exc}"
                log.exception("model load failed")
                raise
            self._state.status = READY
            self._state.report = self._loaded.report.as_dict()
            self._state.message = f"{choice.source} on {self._loaded.plan.device} ({self._loaded.plan.dtype})"
            return self._loaded

    def unload(self) -> None:
        with self._load_lock:
            self._loaded = None
            self._state.status, self._state.report, self._state.message = NOT_LOADED, None, "unloaded"

    def shutdown(self) -> None:
        self.unload()

    def query(self, action: str) -> list[dict | None]:
        """Memory figures of this process (or clear its cache first)."""
        from i2v import gpu

        return [gpu.clear_cache() if action == "clear_cache" else gpu.memory_snapshot()]

    def describe(self) -> list[dict]:
        import os

        return [{"pid": os.getpid(), "in_process": True, **self.state().as_dict()}]

    def pids(self) -> tuple[int, ...]:
        return ()          # this process: its memory is counted as the app's own, not as a worker's

    def place(self, job: str, request, fitter) -> tuple:
        """Where a job runs, when the runner has several cards to choose from: (fit, card), or (None, None)
        here (one machine: the service fits the request to this device itself)."""
        return None, None

    def release(self, job: str) -> None:
        """Undo place() once the job is over."""

    # --- running -----------------------------------------------------------------------------------------
    def cancel(self, job: str | None = None) -> None:
        """Stop the running job at its next layer or step (one job at a time here, so `job` needs no lookup)."""
        self.cancel_event.set()

    def run(self, image, request: GenerationRequest, seed: int, on_event: EventCallback | None = None,
            out_dir: Path | None = None, out_path: Path | None = None,
            policy: FallbackPolicy | None = None, clear_cancel: bool = True, job: str | None = None,
            sidecar: dict | None = None, preview_every: int = 0) -> RunOutput:
        """Sample, decode and write the MP4 (out_path, or a new name in out_dir) and, given the server's part of
        it (i2v.sidecar.base), its sidecar in the same call, inside the OOM guard.

        On an out-of-memory error: free memory, then (policy.auto) retry one fallback notch lower, up to
        policy.max_attempts; a decode-time OOM keeps the latents and only re-decodes. When no attempt is left,
        raises OutOfMemoryFailure with a configuration predicted to fit the memory measured after cleanup.
        Raises GenerationCancelled if cancel_event is set at a phase, a step or a layer inside a step; nothing is
        written then, and the job's memory is freed before it is raised (the model stays loaded).
        preview_every > 0: on_event("preview", steps_done, total, jpeg) after every that many denoising steps.
        """
        policy = policy or FallbackPolicy()
        if clear_cancel:   # a worker's flag is cleared by the server before it sends the job
            self.cancel_event.clear()
        started = time.perf_counter()
        loaded = self.load()
        job = _JobTrace(self.cancel_event, on_event, self.in_step_cancel)
        if preview_every > 0 and on_event is not None:
            job.preview = PreviewTap(preview_every, lambda step, total, data: on_event("preview", step, total, data))
        job.marks["load"] = time.perf_counter() - started
        attempts: list[dict] = []
        current = request
        while True:
            if on_event is not None:
                on_event("attempt", len(attempts) + 1, policy.max_attempts)
            failure = cancelled = None
            try:
                frames = self._attempt(loaded, image, current, seed, job)
            except GenerationCancelled as exc:
                cancelled = exc.with_traceback(None)   # its frames hold the interrupted step's tensors
            except Exception as exc:  # noqa: BLE001 - only OOMs are handled; the rest re-raised below
                pl.release_after_failure(loaded)
                if not guard.is_oom_exception(exc):
                    raise
                failure = {"phase": job.phase, "error": f"{type(exc).__name__}: {exc}",
                           "memory_before": guard.read_memory()}
                if job.phase != "decode":
                    job.latents = None     # only a decode-time OOM keeps what was sampled
            if cancelled is not None:
                pl.release_after_cancel(loaded)     # outside the except block: the step's tensors are gone
                raise cancelled
            if failure is None:
                break
            # Outside the except block, so the traceback no longer pins the failed tensors.
            failure["memory_after"] = guard.free_after_oom(loaded)
            attempts.append({"attempt": len(attempts) + 1, "request": current.as_dict(), **failure})
            log.warning("OOM during %s (attempt %d): %s", failure["phase"], len(attempts), failure["error"])
            next_request = None
            if policy.auto and len(attempts) < policy.max_attempts:
                next_request = fallback_after_oom(current, failure["phase"])
            if next_request is None:
                raise oom_failure(current, attempts, self.memory_dtype(loaded), loaded.plan.device,
                                  loaded.choice.family)
            current, description = next_request
            attempts[-1]["fallback"] = description
        loaded.hooks.start(None, 0)
        if self.cancel_event.is_set():
            raise GenerationCancelled("cancelled_before_save")
        if on_event is not None:
            on_event("save", 0, 0)
        save_started = time.perf_counter()
        written: dict = {}

        def sidecar_for(path: Path) -> dict:
            job.marks["save"] = time.perf_counter() - save_started
            timings = {**{k: round(v, 3) for k, v in job.marks.items()},
                       "total": round(time.perf_counter() - started, 3)}
            written.update(sidecar_info.complete(sidecar, path, request, current, timings, attempts,
                                                 job.counts.get("denoise", 0), self.state().as_dict()))
            return written

        path = video.write_video(frames, current.fps, out_dir=out_dir, out_path=out_path,
                                 sidecar=sidecar_for if sidecar is not None else None)
        job.marks["save"] = time.perf_counter() - save_started
        timings = written.get("timings_s") or {**{k: round(v, 3) for k, v in job.marks.items()},
                                               "total": round(time.perf_counter() - started, 3)}
        return RunOutput(video_path=path, timings=timings, request=current, attempts=attempts,
                         denoise_steps_run=job.counts.get("denoise", 0), info=written or None)

    def _attempt(self, loaded, image, request, seed, job: "_JobTrace"):
        """One try: sample (unless latents survived a decode-time OOM, kept on job), then decode."""
        job.start_phase()
        if job.latents is None:
            job.latents = pl.sample_latents(loaded, image, request, seed, job.listener, job.check, job.preview)
            if self.cancel_event.is_set():
                raise GenerationCancelled("cancelled_after_denoise")
            job.mark("denoise")
        job.phase = "decode"
        frames = pl.decode_frames(loaded, job.latents, request, job.listener, job.check)
        job.mark("decode")
        return frames

    @staticmethod
    def memory_dtype(loaded) -> str:
        return {"float16": "fp16", "bfloat16": "bf16"}.get(loaded.plan.dtype, "fp32")


class _JobTrace:
    """Per-job bookkeeping shared by the attempts: current phase, phase counts, timings, cancel checks."""

    def __init__(self, cancel_event, on_event: EventCallback | None, in_step: bool = True):
        self.cancel_event, self.on_event = cancel_event, on_event
        self.phase, self.counts, self.marks = "start", {}, {}
        self.latents = None
        self.preview: PreviewTap | None = None     # the live preview's tap (i2v.preview_tap), when asked for
        self.check = self.check_cancel if in_step else None     # run inside steps (i2v.cancel_points)
        self._t = time.perf_counter()

    def check_cancel(self) -> None:
        """The cancel test inside a step, before every layer (i2v.cancel_points); the listener makes the same one
        at each phase start and step."""
        if self.cancel_event.is_set():
            raise GenerationCancelled("cancelled_during", phase=self.phase)

    def start_phase(self) -> None:
        self._t = time.perf_counter()

    def mark(self, name: str) -> None:
        self.marks[name] = self.marks.get(name, 0.0) + time.perf_counter() - self._t
        self._t = time.perf_counter()

    def listener(self, phase: str, index: int, total: int) -> None:
        if self.cancel_event.is_set():
            raise GenerationCancelled("cancelled_during", phase=phase)
        if phase == "denoise" and index == 1:
            self.mark("encode")
        self.phase = phase
        self.counts[phase] = self.counts.get(phase, 0) + 1
        if self.on_event is not None:
            self.on_event(phase, index, total)
