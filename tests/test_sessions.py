"""Two clients of one real app (tiny model): Stop is per session, control calls pass a full queue, and a
Generate sent while a Stop finishes is not lost."""
import time

import httpx
import pytest
from gradio_client import handle_file

from i2v import video
from i2v.ui import QUEUE_MAX_SIZE

PARAMS = dict(negative_prompt="", resolution=256, fps=8, guidance_scale=7.5)
WAIT_S = 180


def start_long_job(client, image, seed=3):
    return client.submit(image=handle_file(str(image)), prompt="slow", num_frames=4, num_inference_steps=150,
                         seed=seed, api_name="/generate", **PARAMS)


def denoising_job(app, image):
    """A client of its own with a long job, once that job is denoising: (client, job, the step it reached)."""
    client = app.client()
    job = start_long_job(client, image)
    return client, job, wait_denoising(job)


def assert_cancelled(job):
    """The job ends as cancelled: its result raises."""
    with pytest.raises(Exception, match="cancelled"):
        job.result(timeout=WAIT_S)


def wait_denoising(job, at_least=2):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        steps = [p.index or 0 for p in job.status().progress_data or [] if p.desc == "Denoising"]
        if steps and max(steps) >= at_least:
            return max(steps)
        if job.done():
            pytest.fail(f"the job ended early: {job.exception()!r}")
        time.sleep(0.1)
    pytest.fail("the job never reached denoising")


def fill_the_queue(app, image):
    """One more short job than the queue holds, each from its own client: (clients, jobs), once one is refused."""
    clients = [app.client() for _ in range(QUEUE_MAX_SIZE + 1)]
    jobs = [c.submit(image=handle_file(str(image)), prompt="q", num_frames=2, num_inference_steps=1,
                     seed=i, api_name="/generate", **PARAMS) for i, c in enumerate(clients)]
    deadline = time.monotonic() + WAIT_S
    while not any(job.status().code.name == "QUEUE_FULL" or job.done() for job in jobs):
        assert time.monotonic() < deadline, "the queue never filled"
        time.sleep(0.1)
    return clients, jobs


def control(app, client, name):
    """A control endpoint called outside the queue, as this client's session."""
    answer = httpx.post(f"{app.url}gradio_api/api/{name}/", json={"data": [], "session_hash": client.session_hash},
                        timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()["data"][0]


def test_another_clients_stop_leaves_my_job_running(running_app, sample_image):
    mine, theirs = running_app.client(), running_app.client()
    job = start_long_job(mine, sample_image)
    step = wait_denoising(job)
    assert "Nothing is running" in theirs.predict(api_name="/cancel")
    later = wait_denoising(job, at_least=step + 2)      # still going after their Stop
    assert later >= step + 2 and not job.done()
    assert "Stopping" in mine.predict(api_name="/cancel")
    assert_cancelled(job)


def test_with_the_queue_full_my_stop_still_ends_my_job(running_app, sample_image):
    mine, job, _ = denoising_job(running_app, sample_image)
    others, queued = fill_the_queue(running_app, sample_image)
    # control calls bypass the queue (direct POST, as the page makes them): not refused by the full queue
    assert "Stopping" in control(running_app, mine, "cancel")
    assert control(running_app, mine, "memory")["total_gib"] > 0
    assert_cancelled(job)
    for client, q in zip(others, queued):           # let the short queued jobs drain
        try:
            q.result(timeout=WAIT_S)
        except Exception:  # noqa: BLE001 - some were refused because the queue was full: that is the point
            pass


def test_generate_sent_during_a_stop_is_not_lost(running_app, sample_image):
    client, job, _ = denoising_job(running_app, sample_image)
    assert "Stopping" in client.predict(api_name="/cancel")
    path, info = client.predict(image=handle_file(str(sample_image)), prompt="next", num_frames=3,
                                num_inference_steps=1, seed=9, api_name="/generate", **PARAMS)
    assert video.probe_video(path).frames == 3 and info["seed"] == 9
    assert_cancelled(job)


def busy(app, client) -> bool:
    """Whether the worker is running a job now (the server's own view, asked outside the queue)."""
    return any(w["busy"] for w in control(app, client, "server_info")["workers"])


def wait_idle(app, client, within_s=WAIT_S) -> float:
    """Seconds until the worker is idle (fails after within_s)."""
    start = time.monotonic()
    while busy(app, client):
        assert time.monotonic() - start < within_s, f"the worker was still busy after {within_s} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_cancel_that_names_no_session_stops_nothing(running_app, sample_image):
    mine, job, step = denoising_job(running_app, sample_image)
    answer = httpx.post(f"{running_app.url}gradio_api/api/cancel/", json={"data": []}, timeout=30)
    assert answer.status_code == 200 and "names no session" in answer.json()["data"][0]
    assert wait_denoising(job, at_least=step + 2) >= step + 2 and not job.done()   # my job runs on
    assert "Stopping" in mine.predict(api_name="/cancel")
    assert_cancelled(job)


def test_gradio_clients_stop_passes_a_full_queue(running_app, sample_image):
    """client.predict('/cancel') goes through Gradio's queue: only generate jobs count towards its limit."""
    mine, job, _ = denoising_job(running_app, sample_image)
    _, queued = fill_the_queue(running_app, sample_image)
    assert "Stopping" in mine.predict(api_name="/cancel")          # through the queue, as gradio_client does
    assert mine.predict(api_name="/status")["status"]              # other control calls pass too
    assert_cancelled(job)
    for q in queued:
        q.cancel()                     # leave the queue (the waiting ones are removed by Gradio)
    wait_idle(running_app, mine)


def test_gradio_clients_job_cancel_ends_the_job_on_the_worker(running_app, sample_image):
    mine, job, _ = denoising_job(running_app, sample_image)
    assert busy(running_app, mine)
    job.cancel()                                     # gradio_client's own cancel: Gradio's /cancel route
    seconds = wait_idle(running_app, mine, within_s=60)
    assert seconds < 60
    path, info = mine.predict(image=handle_file(str(sample_image)), prompt="next", num_frames=2,
                              num_inference_steps=1, seed=5, api_name="/generate", **PARAMS)
    assert video.probe_video(path).frames == 2 and info["seed"] == 5


CLIENT_SCRIPT = """
import sys
from gradio_client import Client, handle_file
client = Client(sys.argv[1], verbose=False)
job = client.submit(image=handle_file(sys.argv[2]), prompt="closed tab", negative_prompt="", resolution=256,
                    num_frames=4, fps=8, num_inference_steps=150, guidance_scale=7.5, seed=1, api_name="/generate")
job.result(timeout=3600)
"""


def test_a_job_whose_client_went_away_ends_and_the_next_one_starts(running_app, sample_image, tmp_path):
    """A client process killed mid-job (a closed tab): its job ends and the next client's job runs."""
    import os
    import signal
    import subprocess
    import sys

    watcher = running_app.client()
    script = tmp_path / "client.py"
    script.write_text(CLIENT_SCRIPT)
    gone = subprocess.Popen([sys.executable, str(script), running_app.url, str(sample_image)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + WAIT_S
        while not busy(running_app, watcher):
            assert gone.poll() is None, "the client exited before its job started"
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
    finally:
        os.kill(gone.pid, signal.SIGKILL)
        gone.wait(30)
    seconds = wait_idle(running_app, watcher, within_s=60)
    assert seconds < 60
    started = time.monotonic()
    path, info = watcher.predict(image=handle_file(str(sample_image)), prompt="next", num_frames=2,
                                 num_inference_steps=1, seed=6, api_name="/generate", **PARAMS)
    assert video.probe_video(path).frames == 2 and time.monotonic() - started < 60


def test_the_queue_shows_every_job_and_who_may_cancel_it(running_app, sample_image):
    """Loopback without a login: one local user, who may cancel any job (the page asks first)."""
    mine, theirs = running_app.client(), running_app.client()
    running = start_long_job(theirs, sample_image)
    wait_denoising(running)
    waiting = start_long_job(mine, sample_image, seed=4)
    deadline = time.monotonic() + WAIT_S
    while len(rows := mine.predict(api_name="/queue")) < 2:
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    first, second = rows
    assert (first["place"], first["mine"], second["place"], second["mine"]) == (0, False, 1, True), rows
    assert first["settings"] == {"resolution": 256, "num_frames": 4, "num_inference_steps": 150}
    assert first["elapsed_s"] > 0 and first["left_s"] is not None and second["left_s"] >= 0
    assert all(row["may_cancel"] for row in rows)
    assert [r["mine"] for r in theirs.predict(api_name="/queue")] == [True, False]   # the other's view
    # my waiting job leaves the queue; its call ends with the reason
    assert "cancelled" in mine.predict(second["key"], api_name="/cancel_job")
    with pytest.raises(Exception):
        waiting.result(timeout=WAIT_S)
    # the other's running job, cancelled by the one local user
    assert "cancelled" in mine.predict(first["key"], api_name="/cancel_job")
    assert_cancelled(running)
    wait_idle(running_app, mine)
    assert mine.predict(api_name="/queue") == []
    assert "no longer" in mine.predict(first["key"], api_name="/cancel_job")


def test_with_a_login_only_the_owner_may_cancel_a_job(tmp_path_factory, sample_image):
    from tests.conftest import RunningApp

    app = RunningApp(tmp_path_factory.mktemp("login_queue"), extra_env={"I2V_AUTH": "me:pw"})
    try:
        from gradio_client import Client

        mine, theirs = (Client(app.url, auth=("me", "pw"), verbose=False) for _ in range(2))
        job = start_long_job(theirs, sample_image)
        wait_denoising(job)
        rows = mine.predict(api_name="/queue")
        assert len(rows) == 1 and not rows[0]["mine"] and not rows[0]["may_cancel"]
        assert "Only the tab" in mine.predict(rows[0]["key"], api_name="/cancel_job")
        assert not job.done()
        assert "Stopping" in theirs.predict(api_name="/cancel")
        assert_cancelled(job)
    finally:
        app.stop()
