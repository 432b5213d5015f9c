"""Every runner the service can be given implements the whole Runner protocol (no probing with getattr)."""
import inspect

from i2v.runner import LocalRunner, Runner
from i2v.worker import WorkerPool, WorkerRunner

PROTOCOL_METHODS = [name for name, member in inspect.getmembers(Runner, inspect.isfunction)
                    if not name.startswith("_")]


def runners(tmp_path):
    worker = WorkerRunner("tiny", tmp_path)             # no process until its first use
    return [LocalRunner("tiny"), worker, WorkerPool([worker])]


def test_each_runner_is_a_runner(tmp_path):
    assert {"run", "cancel", "query", "describe", "pids", "unload", "shutdown"} <= set(PROTOCOL_METHODS)
    for runner in runners(tmp_path):
        assert isinstance(runner, Runner), type(runner).__name__
        assert runner.capacity >= 1
        for name in PROTOCOL_METHODS:                   # and with the protocol's parameters
            wanted = list(inspect.signature(getattr(Runner, name)).parameters)[1:]
            have = inspect.signature(getattr(runner, name)).parameters
            assert all(p in have for p in wanted) or any(
                p.kind == p.VAR_POSITIONAL for p in have.values()), (type(runner).__name__, name)


def test_idle_runners_answer_without_starting_anything(tmp_path):
    local, worker, pool = runners(tmp_path)
    assert local.pids() == () and worker.pids() == () and pool.pids() == ()
    assert local.describe()[0]["in_process"] is True
    assert [d["pid"] for d in pool.describe()] == [None] and pool.describe()[0]["busy"] is False
    snapshot = local.query("memory")[0]
    assert snapshot["total_bytes"] > 0 and snapshot["kind"] in ("cpu", "cuda")
