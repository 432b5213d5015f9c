"""Generation in a supervised worker process: the web server never touches CUDA or the model.

The worker (spawned, one per GPU) owns a LocalRunner, hence the pipeline and the CUDA context. Small typed
messages cross a pipe: requests in; phase events (the heartbeat), results and errors out. The server side
(WorkerRunner) is a drop-in runner for the service: it watches the heartbeat, detects a dead worker at once,
kills a silent or cancel-ignoring one, and starts a fresh one (the model reloads lazily) — so all GPU memory
comes back without restarting the app.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path

from i2v.core import faults as fault_rules
from i2v.core.request import GenerationRequest, RequestError
from i2v.core.units import format_bytes
from i2v.runner import (
    LOADING,
    NOT_LOADED,
    READY,
    EventCallback,
    GenerationCancelled,
    GenerationFailed,
    ModelState,
    RunOutput,
)

log = logging.getLogger(__name__)

KILL_WAIT_S = 10.0
LOAD_BEAT_S = 10.0          # load heartbeat period, sent only while the worker's CPU time advances
MIN_LOAD_CPU_S = 0.05
MEMORY_SAMPLE_S = 1.0      # how often a heartbeat also samples the worker's memory
POLL_S = 0.1
IGNORE_CANCEL_ENV = "I2V_INJECT_IGNORE_CANCEL"   # testing aid: the worker ignores the cooperative flag


@dataclass(frozen=True)
class WatchdogSettings:
    """timeout = max(floor_s, step_factor x the slowest gap between heartbeats seen); env overrides for tests."""
    floor_s: float = 120.0
    step_factor: float = 5.0
    load_timeout_s: float = 600.0       # between load heartbeats: a load making no progress for this long
    cancel_grace_s: float = 10.0

    @classmethod
    def from_env(cls, environ=os.environ) -> "WatchdogSettings":
        return cls(
            floor_s=float(environ.get("I2V_WATCHDOG_FLOOR_S", cls.floor_s)),
            step_factor=float(environ.get("I2V_WATCHDOG_STEP_FACTOR", cls.step_factor)),
            load_timeout_s=float(environ.get("I2V_LOAD_TIMEOUT_S", cls.load_timeout_s)),
            cancel_grace_s=float(environ.get("I2V_CANCEL_GRACE_S", cls.cancel_grace_s)),
        )


# --- messages (small, picklable) -------------------------------------------------------------------------
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


@dataclass(frozen=True)
class EventMsg:
    phase: str
    index: int
    total: int


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


@dataclass(frozen=True)
class QueryMsg:
    action: str                         # memory | clear_cache


@dataclass(frozen=True)
class ReplyMsg:
    data: dict


@dataclass(frozen=True)
class ErrorMsg:
    kind: str                           # cancelled | request | failed | oom
    message: str
    state: dict
    report: dict | None = None          # oom: what failed, memory before/after, attempts, suggestion
    suggestion: dict | None = None
    key: str | None = None              # request: the message id and params (i2v.core.errors), never parsed text
    params: dict | None = None


class WorkerLost(GenerationFailed):
    """The worker hung or died and was replaced; the message says what happened and what was released."""


# --- the worker process ------------------------------------------------------------------------------------
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
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    from i2v import gpu as hardware

    hardware.prepare_cuda_environment(os.environ)     # before torch starts CUDA
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # the server handles Ctrl-C and shuts us down
    _setup_worker_logging(Path(logs_dir))
    _exit_with_parent()
    from i2v.runner import LocalRunner

    runner = LocalRunner(model_spec)
    runner.cancel_event = _NeverSet() if os.environ.get(IGNORE_CANCEL_ENV) else cancel_event
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
    from i2v.runner import FallbackPolicy, OutOfMemoryFailure

    job_counts: dict[str, int] = {}
    attempt_counts: dict[str, int] = {}

    def on_event(phase: str, index: int, total: int) -> None:
        conn.send(EventMsg(phase, index, total))          # heartbeat first, so the server counts it
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
                            policy=FallbackPolicy(message.auto_fallback, message.max_attempts), clear_cancel=False)
        conn.send(DoneMsg(str(output.video_path), output.timings, runner.state().as_dict(),
                          output.request.as_dict(), output.attempts, output.denoise_steps_run))
    except OutOfMemoryFailure as exc:
        conn.send(ErrorMsg("oom", str(exc), runner.state().as_dict(), exc.report, exc.suggestion))
    except GenerationCancelled as exc:
        conn.send(ErrorMsg("cancelled", str(exc), runner.state().as_dict()))
    except RequestError as exc:
        conn.send(ErrorMsg("request", str(exc), runner.state().as_dict(), key=exc.key, params=exc.params))
    except Exception as exc:  # noqa: BLE001 - reported to the server, traceback in the worker log
        log.exception("generation failed in worker")
        conn.send(ErrorMsg("failed", f"{type(exc).__name__}: {exc}", runner.state().as_dict()))


# --- the server side ---------------------------------------------------------------------------------------
def process_memory_bytes(pid: int) -> int:
    """GPU memory the process holds (NVML) if any GPU is visible, else its resident RAM."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            used = 0
            for index in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if proc.pid == pid and proc.usedGpuMemory:
                        used += proc.usedGpuMemory
            if used:
                return used
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no NVML: fall back to RAM
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except Exception:  # noqa: BLE001 - process already gone
        return 0


@dataclass
class WorkerStats:
    slowest_gap_s: float = 0.0
    restarts: int = 0
    last_restart_reason: str = ""
    events: list = field(default_factory=list)


class WorkerRunner:
    """Server-side handle of one worker process; the same interface the service uses for LocalRunner."""

    capacity = 1

    def __init__(self, model_spec: str, logs_dir: Path, gpu: str | None = None,
                 fault_counter: fault_rules.FaultCounter | None = None, watchdog: WatchdogSettings | None = None):
        self._ctx = mp.get_context("spawn")
        self.watchdog = watchdog or WatchdogSettings.from_env()
        self.model_spec, self.gpu, self.logs_dir = model_spec, gpu, Path(logs_dir)
        self.cancel_event = self._ctx.Event()
        self.faults = fault_counter or fault_rules.FaultCounter([])
        self.stats = WorkerStats()
        self._state = ModelState(spec=model_spec)
        self._io = threading.Lock()          # one conversation with the worker at a time
        self._process = None
        self._conn = None
        self._last_memory = 0           # the worker's memory at its latest sampled heartbeat
        self._last_sample = 0.0

    # --- lifecycle ---------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        parent_conn, child_conn = self._ctx.Pipe()
        self._process = self._ctx.Process(
            target=worker_main, name=f"i2v-worker-{self.gpu or 'cpu'}", daemon=True,
            args=(child_conn, self.cancel_event, self.model_spec, self.gpu, str(self.logs_dir)),
        )
        self._process.start()
        child_conn.close()
        self._conn = parent_conn
        self._state = ModelState(spec=self.model_spec, status=NOT_LOADED, message="worker started; model loads on first use")
        log.info("worker started: pid %s (gpu %s)", self._process.pid, self.gpu)

    def _kill(self, reason: str) -> int:
        """Kill the worker (SIGKILL after SIGTERM), return the memory it held, and leave a fresh one behind."""
        process, released = self._process, self._last_memory
        if process is not None:
            if process.is_alive():
                released = process_memory_bytes(process.pid) or released
                process.kill()
            process.join(KILL_WAIT_S)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn, self._last_memory = None, None, 0
        self.stats.restarts += 1
        self.stats.last_restart_reason = reason
        log.warning("worker replaced (%s); %s released", reason, format_bytes(released))
        self._ensure_started()
        return released

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to finish and exit; kill it if it does not."""
        process = self._process
        if process is None:
            return
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        process.join(timeout_s)
        if process.is_alive():
            process.kill()
            process.join(KILL_WAIT_S)
        self._process = None

    # --- the runner interface ----------------------------------------------------------------------------
    def cancel(self, job: str | None = None) -> None:
        """Stop the running job at its next step (one job at a time per worker)."""
        self.cancel_event.set()

    def state(self) -> ModelState:
        return self._state

    def start_loading(self) -> threading.Thread:
        thread = threading.Thread(target=self._load_quietly, name="i2v-worker-loader", daemon=True)
        thread.start()
        return thread

    def _load_quietly(self) -> None:
        try:
            self.load()
        except GenerationFailed:
            pass

    def load(self) -> None:
        with self._io:
            self._ensure_started()
            self._state.status, self._state.message = LOADING, "loading the model in the worker"
            self._conn.send(LoadMsg())
            reply = self._converse(on_event=None)
            if not isinstance(reply, StateMsg):
                raise GenerationFailed(f"unexpected reply from the worker: {type(reply).__name__}")

    def unload(self) -> int:
        """Replace the worker: every byte it held goes back to the system."""
        with self._io:
            return self._kill("unload requested")

    def query(self, action: str) -> dict | None:
        """Memory figures (or clear the cache) inside the worker; None while a job holds the worker."""
        if not self._io.acquire(blocking=False):
            return None
        try:
            self._ensure_started()
            self._conn.send(QueryMsg(action))
            reply = self._converse(None)
            return reply.data if isinstance(reply, ReplyMsg) else None
        finally:
            self._io.release()

    def run(self, image, request: GenerationRequest, seed: int, on_event: EventCallback | None = None,
            out_dir: Path | None = None, out_path: Path | None = None, policy=None, job: str | None = None) -> RunOutput:
        from i2v.runner import FallbackPolicy, OutOfMemoryFailure

        policy = policy or FallbackPolicy()
        with self._io:
            self._ensure_started()
            self.cancel_event.clear()
            self._conn.send(RunMsg(image, request, seed, str(out_dir) if out_dir else None,
                                   str(out_path) if out_path else None, self.faults.plan_for_attempt(),
                                   self.faults.always_kinds(), policy.auto, policy.max_attempts))
            reply = self._converse(on_event)
        if isinstance(reply, DoneMsg):
            return RunOutput(video_path=Path(reply.video_path), timings=reply.timings,
                             request=GenerationRequest(**reply.request), attempts=reply.attempts,
                             denoise_steps_run=reply.denoise_steps_run)
        if reply.kind == "oom":
            raise OutOfMemoryFailure(reply.message, reply.report or {}, reply.suggestion)
        if reply.kind == "cancelled":
            raise GenerationCancelled(reply.message)
        if reply.kind == "request":
            raise RequestError(reply.key, **(reply.params or {})) if reply.key else RequestError(reply.message)
        raise GenerationFailed(f"generation failed: {reply.message}. Details are in logs/worker.log.")

    # --- supervision -------------------------------------------------------------------------------------
    def _timeout_after(self, phase: str) -> float:
        if phase == "load":
            return self.watchdog.load_timeout_s
        return max(self.watchdog.floor_s, self.watchdog.step_factor * self.stats.slowest_gap_s)

    def _converse(self, on_event: EventCallback | None):
        """Relay events until a final message; watchdog, crash detection and cancel grace happen here."""
        last_beat, last_phase, cancel_seen = time.monotonic(), "start", None
        while True:
            ready = wait_for([self._conn, self._process.sentinel], timeout=POLL_S)
            now = time.monotonic()
            if self._conn in ready:
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is None:
                    self._lost("the generator died", f"exit code {self._exit_code()}")
                if isinstance(message, EventMsg):
                    if last_phase not in ("start", "load") and message.phase != "load":
                        self.stats.slowest_gap_s = max(self.stats.slowest_gap_s, now - last_beat)
                    last_beat, last_phase = now, message.phase
                    if message.phase in fault_rules.PHASES:
                        self.faults.record(message.phase)
                    if now - self._last_sample > MEMORY_SAMPLE_S:   # so a dead worker's memory is still known
                        self._last_memory, self._last_sample = process_memory_bytes(self._process.pid), now
                    if on_event is not None and message.phase != "load":
                        on_event(message.phase, message.index, message.total)
                    continue
                if isinstance(message, ReplyMsg):
                    return message
                if isinstance(message, (StateMsg, DoneMsg, ErrorMsg)):
                    self._state = ModelState(**message.state)
                    return message
            elif self._process.sentinel in ready:
                self._lost("the generator died", f"exit code {self._exit_code()}")
            if self.cancel_event.is_set():
                cancel_seen = cancel_seen or now
                if now - cancel_seen > self.watchdog.cancel_grace_s:
                    released = self._kill("did not stop within the cancel grace period")
                    raise GenerationCancelled(
                        f"cancelled: the generator did not stop within {self.watchdog.cancel_grace_s:g} s and was "
                        f"restarted; {self._released_text(released)}")
            if now - last_beat > self._timeout_after(last_phase):
                self._lost("the generator stopped responding",
                           f"no heartbeat for {now - last_beat:.0f} s during {last_phase}")

    def _exit_code(self):
        self._process.join(1)
        return self._process.exitcode

    def _lost(self, what: str, detail: str) -> None:
        released = self._kill(f"{what} ({detail})")
        self._state = ModelState(spec=self.model_spec, status=NOT_LOADED, message="worker restarted; model reloads on next use")
        raise WorkerLost(f"{what} and was restarted; {self._released_text(released)} ({detail}). "
                         "Try again: the next generation starts on a fresh worker.")

    def _released_text(self, released: int) -> str:
        kind = "RAM" if self._state.report is None or self._state.report.get("device") != "cuda" else "GPU memory"
        return f"{released / 1024**3:.2f} GiB of {kind} released"


class WorkerPool:
    """One worker per GPU; a job goes to an idle worker. Same interface as a single runner."""

    def __init__(self, workers: list[WorkerRunner]):
        self.workers = workers
        self.capacity = len(workers)
        self._idle: "queue.Queue[WorkerRunner]" = queue.Queue()
        for worker in workers:
            self._idle.put(worker)
        self._busy: set[WorkerRunner] = set()
        self._jobs: dict[str, WorkerRunner] = {}

    def cancel(self, job: str | None = None) -> None:
        """Stop one job (the worker running it) or, with job None, every running job."""
        targets = [self._jobs[job]] if job in self._jobs else ([] if job else list(self._busy))
        for worker in targets:
            worker.cancel()

    def state(self) -> ModelState:
        return self.workers[0].state()

    def describe(self) -> list[dict]:
        return [{"gpu": w.gpu, "pid": w.pid, "busy": w in self._busy, "restarts": w.stats.restarts,
                 "last_restart_reason": w.stats.last_restart_reason, **w.state().as_dict()} for w in self.workers]

    def start_loading(self) -> None:
        for worker in self.workers:
            worker.start_loading()

    def unload(self) -> int:
        return sum(worker.unload() for worker in self.workers)

    def query(self, action: str) -> list[dict | None]:
        return [worker.query(action) for worker in self.workers]

    def pids(self) -> tuple[int, ...]:
        return tuple(w.pid for w in self.workers if w.pid)

    def run(self, *args, job: str | None = None, **kwargs) -> RunOutput:
        worker = self._idle.get()
        self._busy.add(worker)
        if job:
            self._jobs[job] = worker
        try:
            return worker.run(*args, **kwargs)
        finally:
            self._jobs.pop(job, None)
            self._busy.discard(worker)
            self._idle.put(worker)

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.shutdown()


def parse_gpus(text: str | None, visible_count: int) -> list[str | None]:
    """`--gpus 0,1` / `all` / None -> CUDA_VISIBLE_DEVICES value per worker ([None] = one worker, no pinning)."""
    if not text:
        return [None]
    if text == "all":
        return [str(i) for i in range(visible_count)] or [None]
    indices = [part.strip() for part in text.split(",") if part.strip()]
    if not indices or not all(i.isdigit() for i in indices):
        raise ValueError(f"--gpus must be 'all' or a comma-separated list of GPU indices, got {text!r}")
    return indices


def fault_counter_from_env(environ=os.environ) -> fault_rules.FaultCounter:
    return fault_rules.FaultCounter(fault_rules.faults_from_env(environ))

