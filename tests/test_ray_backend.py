"""The Ray backend on a local Ray head with CPU actors and the tiny model: two workers with different
simulated cards, a job routed by memory, Stop reaching the right actor, an actor killed mid-job."""
from __future__ import annotations

import threading
import time

import pytest

from i2v.service import GenerationService
from i2v.core.errors import GenerationCancelled, WorkerLost
from tests.conftest import make_image

ray = pytest.importorskip("ray")
from i2v.ray_backend import RayRunner  # noqa: E402

SMALL_CARD, BIG_CARD = 4, 24                       # GiB, simulated cards (the memory model of the real model)
CARDS = [{"I2V_SIMULATED_DEVICE": f"cuda,{gib},{gib},32"} for gib in (SMALL_CARD, BIG_CARD)]
QUICK = dict(prompt="a lake", negative_prompt="", resolution=256, num_frames=2, fps=8, num_inference_steps=1,
             guidance_scale=7.5, seed=1)
# fits plain on the big card, only with weights streamed from RAM (slower) on the small one
ROUTED = {**QUICK, "resolution": 512, "num_frames": 8}
LONG = {**QUICK, "num_inference_steps": 150}
WAIT_S = 180


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    runner = RayRunner("tiny", worker_envs=CARDS, num_cpus=0.5,
                       ray_init={"num_cpus": 2, "object_store_memory": 200 * 2**20})
    # routed by the full-size model's figures (the tiny model's own fit on any card)
    yield GenerationService(runner, tmp_path_factory.mktemp("ray-outputs"), model_figures="full-size")
    runner.shutdown()                                # stops the actors and the local Ray it started


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image

    return Image.open(make_image(tmp_path_factory.mktemp("ray-img") / "in.png", 320, 240))


class Job:
    """A generation in a thread, with its progress events, so a test can act while it runs."""

    def __init__(self, service, image, values, owner):
        self.events, self.error, self.result = [], None, None
        self.thread = threading.Thread(target=self._run, args=(service, image, values, owner), daemon=True)
        self.thread.start()

    def _run(self, service, image, values, owner):
        try:
            self.result = service.generate(image, values, progress=self.events.append, owner=owner)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc

    def wait_denoising(self, at_least: int = 1) -> int:
        deadline = time.monotonic() + WAIT_S
        while True:
            steps = [u.index for u in self.events if u.phase == "denoise"]
            if steps and steps[-1] >= at_least:
                return steps[-1]
            assert self.thread.is_alive() and time.monotonic() < deadline, (self.error, self.events[-3:])
            time.sleep(0.05)

    def join(self):
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()
        return self


def test_each_worker_reports_its_card_and_node_on_the_device_panel(service):
    from i2v.ui.format import device_markdown

    rows = service.workers()
    assert sorted(r["total_gib"] for r in rows) == [SMALL_CARD, BIG_CARD]
    assert all(r["backend"] == "ray" and r["node"] and r["host"] for r in rows)
    panel = device_markdown(service.device_info(), "en")
    assert panel.count("Ray node") == 2 and f"{BIG_CARD} GiB)" in panel and rows[0]["host"] in panel


def test_a_job_goes_to_the_card_that_runs_it_fastest_and_waits_for_none(service, image):
    result = service.generate(image, ROUTED)
    assert result.worker["total_gib"] == BIG_CARD and result.info()["worker"] == result.worker
    assert result.video_path.parent == service.outputs_dir and result.sidecar_path.exists()
    # with the big card busy, the next job takes the idle small card (the only idle one) instead of waiting
    busy = Job(service, image, LONG, owner="big")
    busy.wait_denoising()
    other = service.generate(image, ROUTED)
    assert other.worker["total_gib"] == SMALL_CARD
    service.cancel(owner="big")
    assert isinstance(busy.join().error, GenerationCancelled)


def test_stop_reaches_the_actor_of_my_job_only(service, image):
    mine, theirs = Job(service, image, LONG, owner="me"), Job(service, image, LONG, owner="them")
    mine.wait_denoising()
    step = theirs.wait_denoising()
    assert service.cancel(owner="me")
    assert isinstance(mine.join().error, GenerationCancelled)
    assert theirs.wait_denoising(at_least=step + 3) >= step + 3 and theirs.thread.is_alive()
    service.cancel(owner="them")
    assert isinstance(theirs.join().error, GenerationCancelled)


def test_an_actor_killed_mid_job_fails_that_job_cleanly_and_the_next_job_works(service, image):
    job = Job(service, image, LONG, owner="victim")
    job.wait_denoising()
    running = next(w for w in service.runner.workers if w.busy)
    ray.kill(running.actor, no_restart=True)
    job.join()
    assert isinstance(job.error, WorkerLost)
    message = str(job.error)
    assert "lost" in message and "try again" in message and "Traceback" not in message and "Ray" not in message
    assert running.lost == 1
    again = service.generate(image, QUICK)
    assert again.video_path.exists() and again.request.num_frames == QUICK["num_frames"]
    assert len(service.workers()) == 2 and all(r["status"] != "lost" for r in service.workers())


def test_no_cluster_at_the_address_is_a_clear_message_not_a_hang(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, free_port

    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "out"), I2V_LOGS=str(tmp_path / "logs"))
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--model", "tiny", "--backend", "ray",
                           "--ray-address", "127.0.0.1:1", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Cannot reach the Ray cluster at 127.0.0.1:1" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
