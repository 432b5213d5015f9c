"""The messages that cross the pipe between the server and a worker: small, typed, picklable.

Server -> worker: LoadMsg, RunMsg, QueryMsg (None asks the worker to exit). Worker -> server: EventMsg (a phase
step: progress and the heartbeat the watchdog listens to), StateMsg, DoneMsg, ReplyMsg, ErrorMsg.
"""
from __future__ import annotations

from dataclasses import dataclass

from i2v.core.request import GenerationRequest


@dataclass(frozen=True)
class LoadMsg:
    pass


@dataclass(frozen=True)
class RunMsg:
    image: object                       # PIL image (small)
    request: GenerationRequest
    seed: int
    out_dir: str | None
    out_path: str | None
    faults: dict                        # kind -> (phase | None, occurrence within this job / attempt)
    always_faults: frozenset = frozenset()
    auto_fallback: bool = True
    max_attempts: int = 4
    sidecar: dict | None = None         # the server's part of the sidecar (i2v.sidecar.base)
    preview_every: int = 0              # live preview: a JPEG strip after every that many steps (0: none)


@dataclass(frozen=True)
class EventMsg:
    phase: str
    index: int
    total: int
    preview: bytes | None = None        # phase "preview": the JPEG strip (a few kB, i2v.preview)


@dataclass(frozen=True)
class StateMsg:
    state: dict


@dataclass(frozen=True)
class DoneMsg:
    video_path: str
    timings: dict
    state: dict
    request: dict
    attempts: list
    denoise_steps_run: int
    info: dict | None = None            # the sidecar written beside the video


@dataclass(frozen=True)
class QueryMsg:
    action: str                         # memory | clear_cache


@dataclass(frozen=True)
class ReplyMsg:
    data: dict


@dataclass(frozen=True)
class ErrorMsg:
    error: dict                         # the failure as i2v.core.wire.to_wire wrote it (type, key, params)
    state: dict
