"""GPU workers on a Ray cluster (`--backend ray`): one page and one queue for several machines.

Each worker is a Ray actor (`num_gpus=1` on a GPU cluster) hosting the same LocalRunner a local worker process
hosts, with the model kept loaded between jobs. The web server stays the one front: it routes each job to the
idle worker whose card runs it best (`RayRunner.place`: no change to the user's settings first, then the
fastest predicted run, then the smaller card, so big cards stay free for big jobs; with no card able to run it
unchanged, the one needing the fewest changes), follows the job's progress, relays Stop to that actor, and
stores the MP4 the actor sends back in its own outputs/ (the sidecar is written there as for local jobs).
An actor or node lost mid-job fails that job with a clear message, and a new actor replaces it when the
cluster has room. Ray is imported only here, and only when this backend is chosen.
"""
from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from i2v.core import words
from i2v.core.errors import BusyError, ClusterUnavailable, I2VError, WorkerLost
from i2v.core.wire import from_wire, to_wire
from i2v.runner import ModelState, RunOutput

log = logging.getLogger(__name__)

POLL_S = 0.1                   # how often the server asks a running actor for new progress events
CALL_TIMEOUT_S = 30.0          # control calls (card, memory, state) to an actor
ACTOR_CONCURRENCY = 4          # a running job, plus progress, Stop and memory calls beside it


def _reachable(address: str, timeout_s: float = 5.0) -> bool:
    """Whether the head's GCS port at HOST:PORT accepts a connection."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


# --- the actor (runs on a cluster node) ------------------------------------------------------------------
class WorkerActor:
    """One GPU worker: a LocalRunner in the actor's process. Plain class; wrapped by ray.remote in RayRunner."""

    def __init__(self, model_spec: str, environ: dict[str, str]):
        from i2v.runner import start_in_worker

        self.runner = start_in_worker(model_spec, environ)   # e.g. I2V_VRAM_LIMIT_GIB, or a simulated card in tests
        self._events: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()

    def card(self) -> dict:
        """The card this actor runs on (name, total, free, VRAM limit) and where it is."""
        import ray

        from i2v import gpu

        device = gpu.with_limit(gpu.probe_device(), gpu.vram_limit_bytes())
        return {**device.as_dict(), "node": ray.get_runtime_context().get_node_id(),
                "host": socket.gethostname(), "pid": os.getpid()}

    def state(self) -> dict:
        return self.runner.state().as_dict()

    def start_loading(self) -> None:
        self.runner.start_loading()

    def events(self, since: int) -> list[tuple[str, int, int]]:
        with self._lock:
            return self._events[since:]

    def cancel(self) -> None:
        self.runner.cancel_event.set()

    def query(self, action: str) -> dict:
        return self.runner.query(action)[0]

    def unload(self) -> int:
        self.runner.unload()
        return 0

    def run(self, image, request, seed: int, auto: bool, max_attempts: int) -> dict:
        """Run one job; the MP4 comes back as bytes (the server keeps the outputs). A failure comes back as
        i2v.core.wire writes it (type, key, params), never as a traceback."""
        from i2v.runner import FallbackPolicy

        with self._lock:
            self._events = []

        def on_event(phase: str, index: int, total: int) -> None:
            with self._lock:
                self._events.append((phase, index, total))

        with tempfile.TemporaryDirectory(prefix="i2v-ray-") as folder:
            try:
                output = self.runner.run(image, request, seed, on_event, out_dir=Path(folder),
                                         policy=FallbackPolicy(auto, max_attempts))
            except I2VError as exc:          # ours (out of memory, Stop, a bad request)
                return {"error": to_wire(exc)}
            except Exception as exc:  # noqa: BLE001 - reported to the server, traceback in this actor's log
                log.exception("generation failed in the Ray worker")
                return {"error": to_wire(exc, where=socket.gethostname())}
            return {"video": output.video_path.read_bytes(), "frames": output.request.num_frames,
                    "timings": output.timings, "request": output.request, "attempts": output.attempts,
                    "denoise_steps_run": output.denoise_steps_run, "state": self.runner.state().as_dict()}


# --- the server side -----------------------------------------------------------------------------------------
@dataclass
class Worker:
    """The server's handle of one actor: its card, whether it is busy, the job it runs."""
    actor: object
    environ: dict
    card: dict = field(default_factory=dict)
    busy: bool = False
    job: str | None = None
    lost: int = 0


class RayRunner:
    """A Runner over Ray actors (see the module docstring). `worker_envs`: one environment per actor (tests
    give each a simulated card); by default one actor per GPU in the cluster, or one on a CPU-only cluster."""

    def __init__(self, model_spec: str, address: str | None = None, worker_envs: list[dict] | None = None,
                 num_gpus: float | None = None, num_cpus: float = 1, ray_init: dict | None = None):
        try:
            import ray
        except ImportError:
            raise ClusterUnavailable("ray_missing") from None
        self._ray = ray
        self.model_spec = model_spec
        self._started_ray = not ray.is_initialized()
        if self._started_ray and address and ":" in address and not _reachable(address):
            raise ClusterUnavailable("ray_unreachable", address=address)   # Ray itself would retry for minutes
        if self._started_ray:
            try:
                ray.init(address=address or None, include_dashboard=False, logging_level=logging.WARNING,
                         **(ray_init or {}))
            except Exception as exc:  # noqa: BLE001 - a bad address or an unreachable head
                log.error("ray.init(%r) failed: %r", address, exc)
                raise ClusterUnavailable("ray_unreachable", address=address or "local") from None
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self._num_gpus = (1 if gpus else 0) if num_gpus is None else num_gpus
        self._num_cpus = num_cpus
        envs = worker_envs if worker_envs is not None else [{} for _ in range(max(gpus, 1))]
        self._lock = threading.Condition()
        self.workers = [Worker(self._spawn(env), env) for env in envs]
        for worker in self.workers:
            worker.card = self._card(worker)
        self.capacity = len(self.workers)
        self._state = ModelState(spec=model_spec)
        log.info("Ray backend: %d worker(s): %s", self.capacity,
                 ", ".join(f"{w.card.get('name')} on {w.card.get('host')}" for w in self.workers))

    # --- actors ------------------------------------------------------------------------------------------
    def _spawn(self, environ: dict):
        remote = self._ray.remote(WorkerActor).options(num_gpus=self._num_gpus, num_cpus=self._num_cpus,
                                                       max_concurrency=ACTOR_CONCURRENCY)
        return remote.remote(self.model_spec, {k: str(v) for k, v in environ.items()})

    def _card(self, worker: Worker) -> dict:
        return self._ray.get(worker.actor.card.remote(), timeout=CALL_TIMEOUT_S)

    def _replace(self, worker: Worker, why: str) -> None:
        """A new actor for a lost one (when the cluster has room; otherwise the next job says so)."""
        log.warning("Ray worker on %s lost (%s); starting a replacement", worker.card.get("host"), why)
        try:
            self._ray.kill(worker.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        worker.lost += 1
        worker.actor = self._spawn(worker.environ)
        try:
            worker.card = self._card(worker)
        except Exception as exc:  # noqa: BLE001 - no room yet: the card is asked again on next use
            log.warning("replacement not ready: %r", exc)

    # --- routing -----------------------------------------------------------------------------------------
    def place(self, job: str, request, fitter):
        """Reserve the idle worker that runs this request best; returns (the fit on its card or None, the card).
        fitter(request, device) -> Fit (raises when nothing fits); device is the card as a DeviceInfo."""
        from i2v.core.clamp import DoesNotFit
        from i2v.gpu import DeviceInfo

        with self._lock:
            while not any(not w.busy for w in self.workers):
                self._lock.wait()
            scored = []
            for index, worker in enumerate(self.workers):
                if worker.busy:
                    continue
                fields = {k: v for k, v in worker.card.items() if k in DeviceInfo.__dataclass_fields__}
                device = DeviceInfo(**fields) if fields else None
                try:
                    fit, seconds = fitter(request, device)
                    score = (len(fit.adjustments), seconds if seconds is not None else float("inf"),
                             worker.card.get("total_bytes", 0), index)
                except DoesNotFit:
                    fit, score = None, (float("inf"), float("inf"), worker.card.get("total_bytes", 0), index)
                scored.append((score, index, fit))
            _, index, fit = min(scored)
            chosen = self.workers[index]
            chosen.busy, chosen.job = True, job
            log.info("job %s -> worker %d (%s on %s)", job, index, chosen.card.get("name"), chosen.card.get("host"))
            return fit, chosen.card

    def release(self, job: str) -> None:
        with self._lock:
            for worker in self.workers:
                if worker.job == job:
                    worker.busy, worker.job = False, None
            self._lock.notify_all()

    # --- the Runner interface ----------------------------------------------------------------------------
    def run(self, image, request, seed: int, on_event=None, out_dir: Path | None = None,
            out_path: Path | None = None, policy=None, job: str | None = None, sidecar: dict | None = None) -> RunOutput:
        from i2v import sidecar as sidecar_info
        from i2v import video
        from i2v.runner import FallbackPolicy

        policy = policy or FallbackPolicy()
        reserved = job is not None and any(w.job == job for w in self.workers)
        if not reserved:
            self.place(job or "direct", request, lambda r, d: (None, None))
            job = job or "direct"
        worker = next(w for w in self.workers if w.job == job)
        try:
            ref = worker.actor.run.remote(image, request, seed, policy.auto, policy.max_attempts)
            seen = 0
            while True:
                ready, _ = self._ray.wait([ref], timeout=POLL_S)
                try:
                    fresh = self._ray.get(worker.actor.events.remote(seen), timeout=CALL_TIMEOUT_S)
                except Exception:  # noqa: BLE001 - a dead actor: the result below says so
                    fresh = []
                seen += len(fresh)
                for phase, index, total in fresh:
                    if on_event is not None:
                        on_event(phase, index, total)
                if ready:
                    break
            try:
                reply = self._ray.get(ref)
            except (self._ray.exceptions.RayActorError, self._ray.exceptions.ActorUnavailableError) as exc:
                where = worker.card.get("host", "?")
                self._replace(worker, type(exc).__name__)
                self._state = ModelState(spec=self.model_spec, message=words.render("state_worker_replaced"))
                raise WorkerLost("worker_lost_remote", host=where) from None
        finally:
            if not reserved:
                self.release(job)
        if "error" in reply:
            raise from_wire(reply["error"])      # the actor's own type, key and params (i2v.core.wire)
        self._state = ModelState(**reply["state"])
        index = self.workers.index(worker)
        where = {"worker": index, "name": worker.card.get("name"), "host": worker.card.get("host"),
                 "node": worker.card.get("node"), "total_gib": round(worker.card.get("total_bytes", 0) / 2**30, 1)}
        written: dict = {}

        def sidecar_for(path: Path) -> dict:
            written.update(sidecar_info.complete(sidecar, path, request, reply["request"], reply["timings"],
                                                 reply["attempts"], reply["denoise_steps_run"], reply["state"], where))
            return written

        path = video.store_video(reply["video"], reply["frames"], out_dir=out_dir, out_path=out_path,
                                 sidecar=sidecar_for if sidecar is not None else None)
        return RunOutput(video_path=path, timings=dict(reply["timings"]), request=reply["request"],
                         attempts=reply["attempts"], denoise_steps_run=reply["denoise_steps_run"], worker=where,
                         info=written or None)

    def cancel(self, job: str | None = None) -> None:
        """Stop one job (on the actor running it) or, with job None, every running job."""
        for worker in self.workers:
            if worker.busy and (job is None or worker.job == job):
                worker.actor.cancel.remote()

    def state(self) -> ModelState:
        return self._state

    def start_loading(self) -> None:
        for worker in self.workers:
            worker.actor.start_loading.remote()

    def unload(self) -> int:
        return sum(self._ray.get([w.actor.unload.remote() for w in self.workers], timeout=CALL_TIMEOUT_S))

    def switch_model(self, spec: str) -> int:
        """Run `spec` from the next job on: each actor is replaced by one started with it (ray.kill frees its
        process and card); the new model loads on first use. Refused while an actor holds a job."""
        with self._lock:
            if any(w.busy for w in self.workers):
                raise BusyError("model_busy", field="model")
            self.model_spec = spec
            for worker in self.workers:
                try:
                    self._ray.kill(worker.actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
                worker.actor = self._spawn(worker.environ)
            self._state = ModelState(spec=spec, message=words.render("state_model_switched"))
        for worker in self.workers:
            try:
                worker.card = self._card(worker)
            except Exception as exc:  # noqa: BLE001 - no room yet: the card is asked again on next use
                log.warning("replacement not ready: %r", exc)
        return 0          # the actors' memory is on their own nodes (not measured here)

    def query(self, action: str) -> list[dict | None]:
        answers = []
        for worker in self.workers:
            try:
                answers.append(self._ray.get(worker.actor.query.remote(action), timeout=CALL_TIMEOUT_S))
            except Exception:  # noqa: BLE001 - a lost actor answers nothing
                answers.append(None)
        return answers

    def describe(self) -> list[dict]:
        """Every worker with its card and node, for the device panel and the API."""
        rows = []
        for index, worker in enumerate(self.workers):
            try:
                state = self._ray.get(worker.actor.state.remote(), timeout=CALL_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - lost: say so
                state = {"status": "lost", "message": "the worker is being replaced"}
            rows.append({"worker": index, "backend": "ray", "gpu": worker.card.get("name"),
                         "host": worker.card.get("host"), "node": worker.card.get("node"),
                         "pid": worker.card.get("pid"), "total_gib": round(worker.card.get("total_bytes", 0) / 2**30, 1),
                         "busy": worker.busy, "restarts": worker.lost, **state})
        return rows

    def pids(self) -> tuple[int, ...]:
        return ()       # the actors' memory is on their own nodes, not counted against this machine

    def shutdown(self) -> None:
        for worker in self.workers:
            try:
                self._ray.kill(worker.actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self._started_ray:
            self._ray.shutdown()
