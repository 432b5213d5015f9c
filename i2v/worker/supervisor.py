"""The server side of the workers: WorkerRunner (one supervised process, the runner interface over a pipe) and
WorkerPool (one worker per GPU). The watchdog's rules live in i2v.worker.watchdog; this module only acts on
its verdicts: a dead, silent or Stop-ignoring worker is killed and replaced, and the memory it held is named.
The temp files a dead worker was writing (`.partial-<its pid>-*` beside the outputs) are removed as soon as its
death is noticed, so they never hold disk space the next job needs.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path

from i2v import files, paths, video
from i2v.core import faults as fault_rules
from i2v.core import words
from i2v.core.errors import GenerationCancelled, GenerationFailed, WorkerLost
from i2v.core.request import GenerationRequest
from i2v.core.wire import from_wire
from i2v.core.units import GIB, format_bytes
from i2v.gpu import process_memory_bytes
from i2v.runner import LOADING, NOT_LOADED, EventCallback, LoadsInBackground, ModelState, RunOutput
from i2v.worker.child import worker_main
from i2v.worker.protocol import DoneMsg, ErrorMsg, EventMsg, LoadMsg, QueryMsg, ReplyMsg, RunMsg, StateMsg
from i2v.worker.watchdog import Watchdog, WatchdogSettings

log = logging.getLogger(__name__)

KILL_WAIT_S = 10.0
EXIT_WAIT_S = 2.0          # at shutdown, after the job was cancelled: how long a worker may take to exit before SIGKILL
MEMORY_SAMPLE_S = 1.0      # how often a heartbeat also samples the worker's memory
POLL_S = 0.1


@dataclass
class WorkerStats:
    slowest_gap_s: float = 0.0
    restarts: int = 0
    last_restart_reason: str = ""
    events: list = field(default_factory=list)


class WorkerRunner(LoadsInBackground):
    """Server-side handle of one worker process; the same interface the service uses for LocalRunner."""

    capacity = 1
    _loader_name = "i2v-worker-loader"
    _load_errors = (GenerationFailed,)

    def __init__(self, model_spec: str, logs_dir: Path, gpu: str | None = None,
                 fault_counter: fault_rules.FaultCounter | None = None, watchdog: WatchdogSettings | None = None,
                 outputs_dir: Path | None = None):
        self._ctx = mp.get_context("spawn")
        self.watchdog = watchdog or WatchdogSettings.from_env()
        self.dog = Watchdog(self.watchdog)
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
        # where this worker writes: outputs/ and every folder a job named (its dead PID's temp files are looked
        # for there)
        self._write_dirs: set[Path] = {Path(outputs_dir or paths.outputs_dir()).resolve()}

    # --- lifecycle ---------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        if self._process is not None:            # it died while idle: its leftovers go before a new one starts
            self._process.join(KILL_WAIT_S)
            self._remove_partials_of(self._process)
        parent_conn, child_conn = self._ctx.Pipe()
        self._process = self._ctx.Process(
            target=worker_main, name=f"i2v-worker-{self.gpu or 'cpu'}", daemon=True,
            args=(child_conn, self.cancel_event, self.model_spec, self.gpu, str(self.logs_dir)),
        )
        self._process.start()
        child_conn.close()
        self._conn = parent_conn
        self._state = ModelState(spec=self.model_spec, status=NOT_LOADED, message=words.render("state_worker_started"))
        log.info("worker started: pid %s (gpu %s)", self._process.pid, self.gpu)

    def _kill(self, reason: str) -> int:
        """Kill the worker (SIGKILL after SIGTERM), return the memory it held, and leave a fresh one behind."""
        process, released = self._process, self._last_memory
        if process is not None:
            if process.is_alive():
                released = process_memory_bytes(process.pid) or released
                process.kill()
            process.join(KILL_WAIT_S)
            self._remove_partials_of(process)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn, self._last_memory = None, None, 0
        self.stats.restarts += 1
        self.stats.last_restart_reason = reason
        log.warning("worker replaced (%s); %s released", reason, format_bytes(released))
        self._ensure_started()
        return released

    def shutdown(self, timeout_s: float = EXIT_WAIT_S) -> None:
        """Ask the worker to finish and exit; kill it if it does not (a step on a loaded CPU can take seconds,
        and the app's exit must not wait for it: the job was already cancelled, nothing is lost)."""
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
        self._remove_partials_of(process)
        self._process = None

    def _remove_partials_of(self, process) -> list[Path]:
        """Remove the temp files a finished worker left (`.partial-<its pid>-*`, the names video.partial_prefix
        gives) in the folders it wrote to: only that PID's, only files or links directly there (a link itself,
        never its target). Skipped while the PID still exists (not yet reaped, or already reused)."""
        import psutil

        pid = process.pid
        if pid is None or process.is_alive() or psutil.pid_exists(pid):
            return []
        removed = []
        for directory in sorted(self._write_dirs):
            removed += files.remove_matching(directory, f"{video.PARTIAL_PREFIX}{pid}-*")
        if removed:
            log.warning("removed %d temp file(s) the dead worker %d left: %s", len(removed), pid,
                        ", ".join(p.name for p in removed))
        return removed

    # --- the runner interface ----------------------------------------------------------------------------
    def cancel(self, job: str | None = None) -> None:
        """Stop the running job at its next step (one job at a time per worker)."""
        self.cancel_event.set()

    def load(self) -> None:
        with self._io:
            self._ensure_started()
            self.cancel_event.clear()        # a Stop left from an earlier job is no reason to kill this load
            self._state.status, self._state.message = LOADING, words.render("state_worker_loading")
            self._conn.send(LoadMsg())
            reply = self._converse(on_event=None)
            if not isinstance(reply, StateMsg):
                raise GenerationFailed("worker_unexpected_reply", reply=type(reply).__name__)

    def unload(self) -> int:
        """Replace the worker: every byte it held goes back to the system."""
        with self._io:
            return self._kill("unload requested")

    def switch_model(self, spec: str) -> int:
        """Run `spec` from the next job on: the worker is replaced by one started with it (the old one killed by
        its PID, every byte it held released); the new model loads on first use. A load in progress is stopped
        (killed) rather than waited for: its model is no longer wanted."""
        self.model_spec = spec
        stopped = 0
        if not self._io.acquire(blocking=False):
            process = self._process
            if self._state.status == LOADING and process is not None and process.is_alive():
                log.info("switching to %s: stopping the load of the previous model (pid %s)", spec, process.pid)
                stopped = process_memory_bytes(process.pid) or 0
                process.kill()                # the loader sees it die and starts a worker with the new spec
            self._io.acquire()
        try:
            fresh = (self._process is not None and self._process.is_alive() and self._state.spec == spec
                     and self._state.status == NOT_LOADED)
            released = stopped if fresh else stopped + self._kill(f"model switched to {spec}")
            self.stats.last_restart_reason = f"model switched to {spec}"
            self.cancel_event.clear()        # no job runs: an earlier Stop does not apply to the new worker
            self._state = ModelState(spec=spec, status=NOT_LOADED, message=words.render("state_model_switched"))
            return released
        finally:
            self._io.release()

    def query(self, action: str) -> list[dict | None]:
        return [self.query_one(action)]

    def describe(self) -> list[dict]:
        return [self.description(busy=self._io.locked())]

    def description(self, busy: bool) -> dict:
        return {"gpu": self.gpu, "pid": self.pid, "busy": busy, "restarts": self.stats.restarts,
                "last_restart_reason": self.stats.last_restart_reason, **self.state().as_dict()}

    def pids(self) -> tuple[int, ...]:
        return (self.pid,) if self.pid else ()

    def place(self, job: str, request, fitter) -> tuple:
        return None, None              # one machine: the service fits to this device

    def release(self, job: str) -> None:
        pass

    def query_one(self, action: str) -> dict | None:
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
            out_dir: Path | None = None, out_path: Path | None = None, policy=None, job: str | None = None,
            sidecar: dict | None = None, preview_every: int = 0) -> RunOutput:
        from i2v.runner import FallbackPolicy

        policy = policy or FallbackPolicy()
        with self._io:
            self._write_dirs.add(Path(out_path).parent.resolve() if out_path else Path(out_dir).resolve()
                                 if out_dir else paths.outputs_dir())
            self._ensure_started()
            self.cancel_event.clear()
            self._conn.send(RunMsg(image, request, seed, str(out_dir) if out_dir else None,
                                   str(out_path) if out_path else None, self.faults.plan_for_attempt(),
                                   self.faults.always_kinds(), policy.auto, policy.max_attempts, sidecar,
                                   preview_every))
            reply = self._converse(on_event)
        if isinstance(reply, DoneMsg):
            return RunOutput(video_path=Path(reply.video_path), timings=reply.timings,
                             request=GenerationRequest(**reply.request), attempts=reply.attempts,
                             denoise_steps_run=reply.denoise_steps_run, info=reply.info)
        raise from_wire(reply.error)           # the worker's own type, key and params (i2v.core.wire)

    # --- supervision -------------------------------------------------------------------------------------
    def _converse(self, on_event: EventCallback | None):
        """Relay events until a final message; crash detection here, the watchdog's verdicts acted on."""
        self.dog.start()
        while True:
            ready = wait_for([self._conn, self._process.sentinel], timeout=POLL_S)
            if self._conn in ready:
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is None:
                    self._lost("worker_died", "lost_exit_code", code=self._exit_code())
                if isinstance(message, EventMsg):
                    self.dog.beat(message.phase)
                    self.stats.slowest_gap_s = self.dog.slowest_gap_s
                    if message.phase in fault_rules.PHASES:
                        self.faults.record(message.phase)
                    now = time.monotonic()
                    if now - self._last_sample > MEMORY_SAMPLE_S:   # so a dead worker's memory is still known
                        self._last_memory, self._last_sample = process_memory_bytes(self._process.pid), now
                    if on_event is not None and message.phase != "load":    # a preview carries its strip
                        on_event(message.phase, message.index, message.total,
                                 *(() if message.preview is None else (message.preview,)))
                    continue
                if isinstance(message, ReplyMsg):
                    return message
                if isinstance(message, (StateMsg, DoneMsg, ErrorMsg)):
                    self._state = ModelState(**message.state)
                    return message
            elif self._process.sentinel in ready:
                self._lost("worker_died", "lost_exit_code", code=self._exit_code())
            verdict = self.dog.check(self.cancel_event.is_set())
            if verdict is not None and verdict.kind == "cancel_overdue":
                device = self._device()
                released = self._kill("did not stop within the cancel grace period")
                raise GenerationCancelled("worker_stop_overdue", grace_s=f"{self.watchdog.cancel_grace_s:g}",
                                          gib=f"{released / GIB:.2f}", device=device)
            if verdict is not None:
                self._lost("worker_silent", verdict.key, **verdict.params)

    def _exit_code(self):
        self._process.join(1)
        return self._process.exitcode

    def _lost(self, key: str, detail_key: str, **params) -> None:
        """Replace the worker and raise WorkerLost (key: worker_died | worker_silent) naming what it released and
        why (detail_key and its params: the message's detail, in the reader's language)."""
        device = self._device()
        released = self._kill(f"{key} ({words.render(detail_key, 'en', **params)})")
        self._state = ModelState(spec=self.model_spec, status=NOT_LOADED,
                                 message=words.render("state_worker_restarted"))
        raise WorkerLost(key, gib=f"{released / GIB:.2f}", device=device, detail_key=detail_key, **params)

    def _device(self) -> str:
        """Where the worker's model ran ('cuda' or 'cpu'): the memory a lost worker gave back."""
        return "cuda" if (self._state.report or {}).get("device") == "cuda" else "cpu"


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
        return [w.description(busy=w in self._busy) for w in self.workers]

    def start_loading(self) -> None:
        for worker in self.workers:
            worker.start_loading()

    def unload(self) -> int:
        return sum(worker.unload() for worker in self.workers)

    def switch_model(self, spec: str) -> int:
        """Every worker runs `spec` from its next job on (the service holds every slot: none is busy)."""
        return sum(worker.switch_model(spec) for worker in self.workers)

    def query(self, action: str) -> list[dict | None]:
        return [worker.query_one(action) for worker in self.workers]

    def pids(self) -> tuple[int, ...]:
        return tuple(w.pid for w in self.workers if w.pid)

    def place(self, job: str, request, fitter) -> tuple:
        return None, None              # the GPUs of one machine: the service fits to its device

    def release(self, job: str) -> None:
        pass

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

