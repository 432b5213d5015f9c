"""GET /healthz: the state rules on plain figures, and the running app's answers (200 while serving, 503 within
a second of its worker's death, 401 for a remote client without the login)."""
from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from i2v import health
from tests.conftest import app_fixture

health_app = app_fixture("health")
DEATH_NOTICE_S = 1.0


def test_states_from_plain_figures():
    alive = {11: True, 12: False}.get
    assert health.classify("ready", [{"pid": 11}], busy=False, alive=alive) == (health.READY, [])
    assert health.classify("ready", [{"pid": 11}], busy=True, alive=alive)[0] == health.BUSY
    assert health.classify("loading", [{"pid": 11}], busy=False, alive=alive)[0] == health.STARTING
    assert health.classify("not loaded", [{"pid": None}], busy=False, alive=alive)[0] == health.STARTING
    state, reasons = health.classify("ready", [{"pid": 11}, {"pid": 12}], busy=False, alive=alive)
    assert state == health.DEGRADED and reasons == ["worker process 12 is gone"]
    assert health.classify("failed", [{"pid": 11}], busy=False, alive=alive)[0] == health.DEGRADED
    # a Ray actor's PID belongs to another node: never checked here
    assert health.classify("ready", [{"pid": 12, "backend": "ray"}], busy=False, alive=alive)[0] == health.READY
    assert health.worker_alive([{"pid": 12, "backend": "ray"}], alive=alive) is None
    assert health.worker_alive([{"pid": 11}, {"pid": None}], alive=alive) is False


def test_a_zombie_is_not_alive():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while health.process_alive(pid) and time.monotonic() < deadline:   # exits, stays a zombie (not reaped)
            time.sleep(0.01)
        assert not health.process_alive(pid)
        assert health.process_alive(os.getpid())
    finally:
        os.waitpid(pid, 0)


def test_device_memory_is_read_at_most_every_few_seconds():
    now = [0.0]
    calls = []
    cache = health.MemoryCache(probe=lambda pids: calls.append(pids) or {"free_bytes": len(calls)},
                               clock=lambda: now[0])
    assert cache.read((1,)) == {"free_bytes": 1}
    now[0] += health.MEMORY_CACHE_S / 2
    assert cache.read((1,)) == {"free_bytes": 1}
    now[0] += health.MEMORY_CACHE_S
    assert cache.read((1,)) == {"free_bytes": 2}


def wait_state(url: str, wanted: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        body = httpx.get(url, timeout=5).json()
        if body["state"] == wanted or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_healthz_answers_200_then_503_within_a_second_of_the_worker_dying(health_app):
    url = health_app.url + "healthz"
    body = wait_state(url, health.READY, 120)       # the tiny model loads in the worker
    assert body["state"] == health.READY, body
    answer = httpx.get(url, timeout=5)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert body["worker_alive"] is True and body["model"]["status"] == "ready"
    assert body["queue_length"] == 0 and body["running_jobs"] == 0
    assert body["device_memory"]["free_bytes"] > 0
    assert body["last_heartbeat_age_s"] >= 0
    [worker] = body["workers"]
    os.kill(worker["pid"], signal.SIGKILL)
    killed = time.monotonic()
    while (answer := httpx.get(url, timeout=5)).status_code != 503 and time.monotonic() - killed < 5:
        time.sleep(0.02)
    noticed_s = time.monotonic() - killed
    assert answer.status_code == 503, answer.text
    assert noticed_s < DEATH_NOTICE_S, noticed_s
    dead = answer.json()
    assert dead["state"] == health.DEGRADED and dead["worker_alive"] is False
    assert f"worker process {worker['pid']} is gone" in dead["reasons"]


def test_healthz_needs_the_login_only_for_remote_clients():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    class FakeService:
        runner = object()

        def model_state(self):
            return {"status": "ready", "spec": "tiny", "message": ""}

        def workers(self):
            return [{"pid": os.getpid()}]

        def running_jobs(self):
            return []

        def is_busy(self):
            return False

    app = Starlette(routes=[health.route(FakeService())])
    app.auth, app.cookie_id, app.tokens = ("u", "p"), "c", {"good": "u"}
    remote = TestClient(app, client=("203.0.113.5", 5000))
    assert remote.get("/healthz").status_code == 401
    remote.cookies.set("access-token-c", "good")
    assert remote.get("/healthz").json()["state"] == health.READY
    local = TestClient(app, client=("127.0.0.1", 5000))
    assert local.get("/healthz").status_code == 200
