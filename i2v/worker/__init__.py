"""Generation in supervised worker processes: the web server never touches CUDA or the model.

A worker (spawned, one per GPU) owns a LocalRunner, hence the pipeline and the CUDA context. Small typed
messages cross a pipe (`protocol`): requests in; phase events (the heartbeat), results and errors out. The
worker side is `child`; the server side (`supervisor`: WorkerRunner, WorkerPool) is a drop-in runner for the
service that watches the heartbeat with the pure `watchdog` rules, detects a dead worker at once, kills a
silent or Stop-ignoring one and starts a fresh one (the model reloads lazily), so all GPU memory comes back
without restarting the app.
"""
from i2v.worker.supervisor import (
    WorkerPool,
    WorkerRunner,
    WorkerStats,
    fault_counter_from_env,
    parse_gpus,
)
from i2v.worker.watchdog import Watchdog, WatchdogSettings

__all__ = ["Watchdog", "WatchdogSettings", "WorkerPool", "WorkerRunner", "WorkerStats",
           "fault_counter_from_env", "parse_gpus"]
