"""The real app process, driven through its public API with gradio_client (tiny model)."""
import time

import httpx
import pytest
from gradio_client import handle_file

from i2v import video

PARAMS = dict(negative_prompt="", resolution=256, fps=8, guidance_scale=7.5)


def test_generate_api_returns_an_mp4_matching_the_request(running_app, sample_image):
    client = running_app.client()
    path, info = client.predict(image=handle_file(str(sample_image)), prompt="a cat", num_frames=5,
                                num_inference_steps=2, seed=42, api_name="/generate", **PARAMS)
    probed = video.probe_video(path)           # the file itself, not the info JSON
    assert (probed.frames, probed.width, probed.height, probed.fps) == (5, 344, 256, 8)
    assert info["seed"] == 42 and info["parameters"]["num_frames"] == 5
    assert (running_app.outputs / info["video"]).is_file()
    assert any(o["name"].startswith("gradient checkpointing") for o in info["load_report"]["outcomes"])


def test_bad_input_is_a_clear_error_and_the_app_keeps_serving(running_app, sample_image):
    client = running_app.client()
    with pytest.raises(Exception) as info:
        client.predict(image=handle_file(str(sample_image)), prompt="", num_frames=5, num_inference_steps=2,
                       seed=1, api_name="/generate", **PARAMS)
    assert "Prompt:" in str(info.value) and "Traceback" not in str(info.value)
    assert httpx.get(running_app.url).status_code == 200


def test_stop_during_denoising_then_next_job_works(running_app, sample_image):
    client = running_app.client()
    before = set(running_app.outputs.glob("*.mp4")) if running_app.outputs.exists() else set()
    job = client.submit(image=handle_file(str(sample_image)), prompt="slow", num_frames=4,
                        num_inference_steps=150, seed=3, api_name="/generate", **PARAMS)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = job.status()
        if any(p.desc == "Denoising" and (p.index or 0) >= 2 for p in status.progress_data or []):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the job never reached denoising step 2")
    stop_started = time.monotonic()
    assert "Stopping" in client.predict(api_name="/cancel")
    with pytest.raises(Exception, match="cancelled"):
        job.result(timeout=60)
    assert time.monotonic() - stop_started < 30
    after = set(running_app.outputs.glob("*.mp4"))
    assert after == before and not list(running_app.outputs.glob(f"{video.PARTIAL_PREFIX}*"))
    path, _ = client.predict(image=handle_file(str(sample_image)), prompt="again", num_frames=3,
                             num_inference_steps=1, seed=4, api_name="/generate", **PARAMS)
    assert video.probe_video(path).frames == 3


def test_memory_and_clear_cache_endpoints_return_figures(running_app):
    client = running_app.client()
    deadline = time.monotonic() + 120
    while client.predict(api_name="/server_info")["workers"][0]["status"] != "ready":   # idle worker
        assert time.monotonic() < deadline
        time.sleep(0.5)
    now = client.predict(api_name="/memory")
    assert now["total_gib"] > 0 and now["free_gib"] > 0
    cleared = client.predict(api_name="/clear_cache")
    assert cleared["cleared"] is True
    assert cleared["free_before_bytes"] > 0 and cleared["free_after_bytes"] > 0
    assert cleared["after"]["total_gib"] == now["total_gib"]
