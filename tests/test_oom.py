"""Issue 5: every generate call runs inside the OOM guard. Injected real torch.cuda.OutOfMemoryError at each
phase, through the real `generate` API of a running app on the tiny model."""
import json

import httpx
import pytest
from gradio_client import handle_file

from i2v import video
from tests.conftest import RunningApp

STEPS, FRAMES = 2, 3
PARAMS = dict(negative_prompt="", resolution=256, fps=8, guidance_scale=7.5, seed=11, num_frames=FRAMES,
              num_inference_steps=STEPS)


def generate(client, image):
    return client.predict(image=handle_file(str(image)), prompt="waves", api_name="/generate", **PARAMS)


def oom_log(app):
    path = app.logs / "oom.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("spec, phase", [
    ("text_encode:1", "text_encode"), ("image_encode:1", "image_encode"), ("denoise:1", "denoise"),
    (f"denoise:{STEPS}", "denoise"), ("decode:1", "decode"),
])
def test_injected_oom_recovers_by_fallback_and_is_logged(tmp_path, sample_image, spec, phase):
    app = RunningApp(tmp_path, extra_env={"I2V_INJECT_OOM": spec})
    try:
        client = app.client()
        path, info = generate(client, sample_image)
        assert video.probe_video(path).frames == FRAMES
        assert info["attempts"] == 2 and len(info["fallbacks"]) == 1
        if phase == "decode":      # the latents were kept: denoising ran once, not twice
            assert info["denoise_steps_run"] == STEPS
        records = oom_log(app)
        assert [(r["phase"], r["outcome"]) for r in records] == [(phase, "recovered by attempt 2")]
        assert "OutOfMemoryError" in records[0]["error"] and records[0]["memory_after"]["free_bytes"] > 0
        path, info = generate(client, sample_image)          # the next request is normal
        assert info["attempts"] == 1 and video.probe_video(path).frames == FRAMES
    finally:
        app.stop()


def test_without_auto_fallback_the_error_carries_a_suggestion(tmp_path, sample_image):
    app = RunningApp(tmp_path, extra_env={"I2V_INJECT_OOM": "decode:1", "I2V_AUTO_FALLBACK": "0"})
    try:
        client = app.client()
        with pytest.raises(Exception) as failure:
            generate(client, sample_image)
        message = str(failure.value)
        assert "decode" in message.lower() or "memory" in message.lower()
        assert "Traceback" not in message
        records = oom_log(app)
        assert records[-1]["outcome"] == "failed" and records[-1]["suggestion"]
        assert not list(app.outputs.glob("*.mp4")) if app.outputs.exists() else True
        path, info = generate(client, sample_image)
        assert info["attempts"] == 1 and video.probe_video(path).frames == FRAMES
    finally:
        app.stop()


def test_always_failing_is_bounded_and_the_app_keeps_serving(tmp_path, sample_image):
    app = RunningApp(tmp_path, extra_env={"I2V_INJECT_OOM": "always", "I2V_MAX_ATTEMPTS": "3"})
    try:
        client = app.client()
        with pytest.raises(Exception) as failure:
            generate(client, sample_image)
        assert "Traceback" not in str(failure.value)
        records = oom_log(app)
        assert len(records) == 3 and records[-1]["outcome"] == "failed"
        assert [r["outcome"].startswith("retried with") for r in records[:-1]] == [True, True]
        assert httpx.get(app.url).status_code == 200
        assert client.predict(api_name="/server_info")["workers"][0]["pid"]
    finally:
        app.stop()
