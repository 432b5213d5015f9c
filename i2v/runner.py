"""Owns the loaded pipeline in this process: lazy/background loading, model state, and running one job with
phase events and cooperative cancel. The service talks to a runner; it never touches the pipeline itself.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from i2v import pipeline as pl
from i2v import video
from i2v.core.request import GenerationRequest

log = logging.getLogger(__name__)

EventCallback = Callable[[str, int, int], None]   # (phase, index, total)

NOT_LOADED, LOADING, READY, FAILED = "not loaded", "loading", "ready", "failed"


class GenerationFailed(RuntimeError):
    """An unexpected failure; the message is safe to show, the traceback is in the log."""


class GenerationCancelled(Exception):
    """The user pressed Stop (or the app is shutting down); raised at the next phase boundary / step."""


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


class LocalRunner:
    """Runs generations in this process with a lazily loaded pipeline."""

    capacity = 1

    def __init__(self, model_spec: str = "auto", device: str | None = None):
        self._device = device
        self._loaded: pl.LoadedPipeline | None = None
        self._state = ModelState(spec=model_spec)
        self._load_lock = threading.Lock()
        self.cancel_event = threading.Event()

    # --- model state -------------------------------------------------------------------------------------
    def state(self) -> ModelState:
        return self._state

    def start_loading(self) -> threading.Thread:
        """Load in a background thread so the page is up at once."""
        thread = threading.Thread(target=self._load_quietly, name="i2v-model-loader", daemon=True)
        thread.start()
        return thread

    def _load_quietly(self) -> None:
        try:
            self.load()
        except Exception:  # noqa: BLE001 - recorded in the state and the log
            pass

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

    # --- running -----------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self, image, request: GenerationRequest, seed: int, on_event: EventCallback | None = None,
            out_dir: Path | None = None, out_path: Path | None = None) -> RunOutput:
        """Sample, decode and write the MP4 (out_path, or a new name in out_dir).

        Raises GenerationCancelled if cancel_event is set at a phase boundary or step; nothing is written then.
        """
        started = time.perf_counter()
        loaded = self.load()
        marks = {"load": time.perf_counter() - started}
        phase_start = {"t": time.perf_counter()}

        def listener(phase: str, index: int, total: int) -> None:
            if self.cancel_event.is_set():
                raise GenerationCancelled(f"cancelled during {phase}")
            if phase == "denoise" and index == 1:
                marks["encode"] = time.perf_counter() - phase_start["t"]
                phase_start["t"] = time.perf_counter()
            if on_event is not None:
                on_event(phase, index, total)

        try:
            latents = pl.sample_latents(loaded, image, request, seed, listener)
            if self.cancel_event.is_set():
                raise GenerationCancelled("cancelled after denoising")
            marks["denoise"] = time.perf_counter() - phase_start["t"]
            phase_start["t"] = time.perf_counter()
            frames = pl.decode_frames(loaded, latents, request, listener)
            marks["decode"] = time.perf_counter() - phase_start["t"]
        except BaseException:
            pl.release_after_failure(loaded)
            raise
        loaded.hooks.start(None, 0)
        if self.cancel_event.is_set():
            raise GenerationCancelled("cancelled before saving")
        if on_event is not None:
            on_event("save", 0, 0)
        save_started = time.perf_counter()
        path = video.write_video(frames, request.fps, out_dir=out_dir, out_path=out_path)
        marks["save"] = time.perf_counter() - save_started
        return RunOutput(video_path=path, timings={k: round(v, 3) for k, v in marks.items()})
