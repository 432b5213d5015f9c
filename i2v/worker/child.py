"""The worker process: owns a LocalRunner (the pipeline and the CUDA context) and answers the server's messages.

Spawned by the supervisor; exits with its parent (even a SIGKILLed one) so no orphan keeps GPU memory. While
a model loads it beats only as long as its CPU time grows, so a stuck load is noticed.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing.connection import wait as wait_for
from pathlib import Path

from i2v.core import env
from i2v.core import faults as fault_rules
from i2v.core.wire import to_wire
from i2v.runner import LOADING, READY
from i2v.worker.protocol import DoneMsg, ErrorMsg, EventMsg, LoadMsg, QueryMsg, ReplyMsg, RunMsg, StateMsg

log = logging.getLogger(__name__)

LOAD_BEAT_S = 10.0          # load heartbeat period, sent only while the worker's CPU time advances
MIN_LOAD_CPU_S = 0.05
IGNORE_CANCEL_ENV = "I2V_INJECT_IGNORE_CANCEL"   # testing aid: the worker ignores the cooperative flag


class _NeverSet:
    """A cancel flag that is never set (fault injection: a worker that ignores Stop)."""

    def is_set(self) -> bool:
        return False

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass


def _fire(kind: str, phase: str) -> None:
    log.warning("injected %s at %s", kind, phase)
    if kind == "hang":
        while True:
            time.sleep(3600)
    if kind == "crash":
        os._exit(86)
    if kind == "oom":
        import torch

        raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected by I2V_INJECT_OOM at {phase})")


def worker_main(conn, cancel_event, model_spec: str, gpu: str | None, logs_dir: str) -> None:
    """Entry point of the spawned worker process."""
    from i2v.runner import start_in_worker

    runner = start_in_worker(model_spec, {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # the server handles Ctrl-C and shuts us down
    _setup_worker_logging(Path(logs_dir))
    _exit_with_parent()
    runner.cancel_event = _NeverSet() if env.value(IGNORE_CANCEL_ENV, os.environ) else cancel_event
    conn = _LockedConn(conn)
    _beat_while_loading(conn, runner)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        if isinstance(message, LoadMsg):
            _load(conn, runner)
        elif isinstance(message, RunMsg):
            _run(conn, runner, message)
        elif isinstance(message, QueryMsg):
            conn.send(ReplyMsg(_query(message.action)))


def _query(action: str) -> dict:
    from i2v import gpu

    if action == "clear_cache":
        return gpu.clear_cache()
    return gpu.memory_snapshot()


class _LockedConn:
    """The worker's end of the pipe, safe to send on from the load-heartbeat thread too."""

    def __init__(self, conn):
        self._conn, self._lock = conn, threading.Lock()

    def send(self, message) -> None:
        with self._lock:
            self._conn.send(message)

    def recv(self):
        return self._conn.recv()


def _beat_while_loading(conn, runner, clock=time.process_time, stop: threading.Event | None = None) -> None:
    """While the model loads (a first download can take long), send a 'load' heartbeat every LOAD_BEAT_S
    as long as the process is doing work (its CPU time grows); a stuck load stops beating and is replaced."""
    stop = stop or threading.Event()

    def beat() -> None:
        last_cpu, count = clock(), 0
        while not stop.wait(LOAD_BEAT_S):
            cpu = clock()
            if runner.state().status == LOADING and cpu - last_cpu >= MIN_LOAD_CPU_S:
                count += 1
                try:
                    conn.send(EventMsg("load", count, 0))
                except (OSError, ValueError):
                    return
            last_cpu = cpu

    threading.Thread(target=beat, name="i2v-load-heartbeat", daemon=True).start()


def _exit_with_parent() -> None:
    """If the server dies (even by SIGKILL), exit at once so no orphan keeps holding GPU memory."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_for([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="i2v-parent-watch", daemon=True).start()


def _setup_worker_logging(logs_dir: Path) -> None:
    import logging.handlers

    logs_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(logs_dir / "worker.log", maxBytes=5 * 1024 * 1024, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [worker %(process)d]: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)


def _load(conn, runner) -> None:
    conn.send(EventMsg("load", 0, 0))
    try:
        runner.load()
    except Exception:  # noqa: BLE001 - the state carries the message
        pass
    conn.send(StateMsg(runner.state().as_dict()))


def _run(conn, runner, message: RunMsg) -> None:
    from i2v.core.errors import I2VError
    from i2v.runner import FallbackPolicy

    job_counts: dict[str, int] = {}
    attempt_counts: dict[str, int] = {}

    def on_event(phase: str, index: int, total: int, preview: bytes | None = None) -> None:
        conn.send(EventMsg(phase, index, total, preview))   # heartbeat first, so the server counts it
        if phase == "attempt":
            attempt_counts.clear()
        if phase in fault_rules.PHASES:
            job_counts[phase] = job_counts.get(phase, 0) + 1
            attempt_counts[phase] = attempt_counts.get(phase, 0) + 1
            for kind in fault_rules.should_fire(message.faults, job_counts, attempt_counts, phase,
                                                message.always_faults):
                _fire(kind, phase)

    try:
        if runner.state().status != READY:
            conn.send(EventMsg("load", 0, 0))
        output = runner.run(message.image, message.request, message.seed, on_event,
                            out_dir=Path(message.out_dir) if message.out_dir else None,
                            out_path=Path(message.out_path) if message.out_path else None,
                            policy=FallbackPolicy(message.auto_fallback, message.max_attempts), clear_cancel=False,
                            sidecar=message.sidecar, preview_every=message.preview_every)
        conn.send(DoneMsg(str(output.video_path), output.timings, runner.state().as_dict(),
                          output.request.as_dict(), output.attempts, output.denoise_steps_run, output.info))
    except I2VError as exc:              # ours (out of memory, Stop, a bad request): its type, key and params
        conn.send(ErrorMsg(to_wire(exc), runner.state().as_dict()))
    except Exception as exc:  # noqa: BLE001 - reported to the server, traceback in the worker log
        log.exception("generation failed in worker")
        conn.send(ErrorMsg(to_wire(exc, where="worker"), runner.state().as_dict()))
