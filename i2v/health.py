"""GET /healthz: what a monitor (Uptime Kuma, a cron curl, systemd, Kubernetes) needs to know, answered at once.

The state is read from what the service already tracks (model state, worker PIDs, the watchdog's last beat,
running jobs) and Gradio's queue; nothing here touches the GPU or waits on a worker, so it answers in
milliseconds while a job runs. The route is a plain Starlette route (outside Gradio's queue); a client that is
not on this machine needs the app's login when the app has one (401 otherwise).

States: `starting` (no worker yet, or the model loading), `ready`, `busy` (a job runs), `degraded` (a worker
process is gone or the model failed to load: 503, everything else 200).
"""
from __future__ import annotations

import threading
import time

STARTING, READY, BUSY, DEGRADED = "starting", "ready", "busy", "degraded"
MEMORY_CACHE_S = 2.0      # NVML is opened at most this often (its init alone can take tens of ms)
HEALTH_PATH = "/healthz"


def process_alive(pid: int | None) -> bool:
    """The PID runs and is not a zombie (a SIGKILLed worker stays a zombie until its parent reaps it)."""
    import psutil

    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def worker_handles(runner) -> list:
    """The local worker objects of a runner (a WorkerPool's workers, a WorkerRunner itself); [] for others."""
    if hasattr(runner, "workers") and isinstance(runner.workers, list):
        return list(runner.workers)
    return [runner] if hasattr(runner, "dog") else []


def heartbeat_age_s(runner, clock=time.monotonic) -> float | None:
    """Seconds since the freshest watchdog beat of any local worker (None when the runner has no watchdog)."""
    beats = [w.dog.last_beat for w in worker_handles(runner) if getattr(w, "dog", None) is not None]
    return round(clock() - max(beats), 3) if beats else None


def is_local(row: dict) -> bool:
    """A worker process of this machine (a Ray actor's PID is another node's)."""
    return row.get("backend") != "ray"


def worker_alive(workers: list[dict], alive=process_alive) -> bool | None:
    """Every local worker runs (False while one is not started yet); None when none is visible here (Ray)."""
    pids = [row.get("pid") for row in workers if is_local(row)]
    return all(alive(pid) for pid in pids) if pids else None


def classify(model_status: str, workers: list[dict], busy: bool, alive=process_alive) -> tuple[str, list[str]]:
    """(state, reasons) from plain figures. workers: the runner's describe() rows; a row with "pid" None is a
    worker not started yet; Ray actors (another node's PIDs) are not checked here."""
    local = [row for row in workers if is_local(row)]
    reasons = [f"worker process {row['pid']} is gone" for row in local if row.get("pid") and not alive(row["pid"])]
    if model_status == "failed":
        reasons.append("the model failed to load")
    if reasons:
        return DEGRADED, reasons
    if any(row.get("pid") is None for row in local) or model_status == "loading":
        return STARTING, reasons
    return (BUSY if busy else READY), reasons


class MemoryCache:
    """Free device memory, re-read at most every MEMORY_CACHE_S (NVML without torch; the simulated device in
    tests), so a monitor polling fast costs nothing."""

    def __init__(self, probe=None, clock=time.monotonic):
        self.probe, self.clock = probe, clock
        self._value: dict | None = None
        self._at = -float("inf")
        self._lock = threading.Lock()

    def read(self, holder_pids: tuple[int, ...] = ()) -> dict | None:
        with self._lock:
            if self.clock() - self._at >= MEMORY_CACHE_S:
                self._at = self.clock()
                self._value = self._probe(holder_pids)
            return self._value

    def _probe(self, holder_pids) -> dict | None:
        try:
            if self.probe is not None:
                return self.probe(holder_pids)
            from i2v.gpu import probe_device_without_torch

            device = probe_device_without_torch(0, holder_pids)
            return {"kind": device.kind, "free_bytes": device.free_bytes, "total_bytes": device.total_bytes}
        except Exception:  # noqa: BLE001 - health must answer even when NVML does not
            return None


def snapshot(service, queue_length: int | None, memory: MemoryCache) -> tuple[int, dict]:
    """(HTTP status, JSON body) for the service now."""
    model = service.model_state()
    workers = service.workers()
    jobs = service.running_jobs()
    state, reasons = classify(model.get("status", ""), workers, service.is_busy() or bool(jobs))
    body = {
        "state": state,
        "reasons": reasons,
        "model": {"status": model.get("status"), "spec": model.get("spec"), "message": model.get("message")},
        "worker_alive": worker_alive(workers),
        "workers": [{"pid": w.get("pid"), "gpu": w.get("gpu"), "busy": w.get("busy"),
                     "restarts": w.get("restarts")} for w in workers],
        "last_heartbeat_age_s": heartbeat_age_s(service.runner),
        "running_jobs": len(jobs),
        "queue_length": queue_length,
        "device_memory": memory.read(tuple(w["pid"] for w in workers if is_local(w) and w.get("pid"))),
    }
    return (503 if state == DEGRADED else 200), body


def is_local_client(request) -> bool:
    from i2v.serving import is_loopback

    return request.client is not None and is_loopback(request.client.host)


def logged_in(request) -> bool:
    """The request carries a valid Gradio login cookie, or the app has no login at all."""
    app = request.app
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}")
    return token is not None and token in getattr(app, "tokens", {})


def queue_length_of(app) -> int | None:
    """Generate jobs waiting in Gradio's queue (i2v.ui.job_queue); None before the queue exists."""
    from i2v.ui.job_queue import waiting

    try:
        queue = app.get_blocks()._queue   # noqa: SLF001 - Gradio has no public accessor
    except Exception:  # noqa: BLE001 - no blocks yet
        return None
    return len(waiting(queue))


def route(service):
    """The Starlette route for GET/HEAD /healthz over this service (put first in the app's routes)."""
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    memory = MemoryCache()

    async def healthz(request):
        if not is_local_client(request) and not logged_in(request):
            return JSONResponse({"error": "Not authenticated"}, status_code=401)
        began = time.perf_counter()
        code, body = snapshot(service, queue_length_of(request.app), memory)
        took_ms = (time.perf_counter() - began) * 1000      # the server's own share, apart from the network
        return JSONResponse(body, status_code=code, headers={"cache-control": "no-store",
                                                             "server-timing": f"app;dur={took_ms:.2f}"})

    return Route(HEALTH_PATH, healthz, methods=["GET", "HEAD"])
