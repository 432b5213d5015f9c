"""Issue 5: every generate call runs inside the OOM guard. Injected real torch.cuda.OutOfMemoryError at each
phase, through the real `generate` API of a running app on the tiny model."""
import json

import httpx
import pytest
from gradio_client import handle_file

from i2v import video
from tests.conftest import SIMULATED_DEVICE, RunningApp

STEPS, FRAMES = 2, 3
PARAMS = dict(negative_prompt="", resolution=256, fps=8, guidance_scale=7.5, seed=11, num_frames=FRAMES,
              num_inference_steps=STEPS)


def generate(client, image):
    return client.predict(image=handle_file(str(image)), prompt="waves", api_name="/generate", **PARAMS)


def oom_log(app):
    path = app.logs / "oom.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# A CUDA out-of-memory error comes from a CUDA card: the server ranks plans for one (offload modes included),
# as it would there; the tiny model still runs on this CPU.
CARD = "cuda,24,20,64"


@pytest.fixture(scope="module")
def oom_service(tiny_runner, tmp_path_factory):
    """One service on the shared tiny model for every phase case (no app booted per case): the OOM is raised
    where the worker's I2V_INJECT_OOM raises it, inside the runner's event callback; the two cases below
    go through a real app and its worker."""
    from i2v.service import GenerationService

    folder = tmp_path_factory.mktemp("oom")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("I2V_SIMULATED_DEVICE", CARD)
        yield GenerationService(tiny_runner, folder / "outputs", logs_dir=folder / "logs")


def oom_once_at(phase: str, occurrence: int):
    """A progress callback raising torch's OOM at the occurrence-th event of phase, once (as I2V_INJECT_OOM)."""
    import torch

    seen = {"count": 0, "fired": False}

    def progress(update) -> None:
        if update.phase == phase and not seen["fired"]:
            seen["count"] += 1
            if seen["count"] == occurrence:
                seen["fired"] = True
                raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected at {phase})")
    return progress


@pytest.mark.parametrize("phase, occurrence", [
    ("text_encode", 1), ("image_encode", 1), ("denoise", 1), ("denoise", STEPS), ("decode", 1),
])
def test_injected_oom_recovers_by_fallback_and_is_logged(oom_service, sample_image, phase, occurrence):
    from i2v.service import load_image

    values = {**PARAMS, "prompt": "waves"}
    log_path = oom_service.logs_dir / "oom.jsonl"
    before = len(log_path.read_text().splitlines()) if log_path.exists() else 0
    result = oom_service.generate(load_image(sample_image), values, progress=oom_once_at(phase, occurrence))
    info = result.info()
    assert video.probe_video(result.video_path).frames == FRAMES
    assert info["attempts"] == 2 and len(info["fallbacks"]) == 1
    if phase == "decode":      # the latents were kept: denoising ran once, not twice
        assert info["denoise_steps_run"] == STEPS
    records = [json.loads(line) for line in log_path.read_text().splitlines()[before:]]
    assert [(r["phase"], r["outcome"]) for r in records] == [(phase, "recovered by attempt 2")]
    assert "OutOfMemoryError" in records[0]["error"] and records[0]["memory_after"]["free_bytes"] > 0
    again = oom_service.generate(load_image(sample_image), values)          # the next request is normal
    assert again.info()["attempts"] == 1 and video.probe_video(again.video_path).frames == FRAMES


def test_without_auto_fallback_the_error_carries_a_suggestion(tmp_path, sample_image):
    (tmp_path / "outputs").mkdir()          # there from the start: the failed job must leave no video in it
    app = RunningApp(tmp_path, extra_env={"I2V_INJECT_OOM": "decode:1", "I2V_AUTO_FALLBACK": "0",
                                          "I2V_SIMULATED_DEVICE": SIMULATED_DEVICE})    # this machine's CPU words
    try:
        client = app.client()
        with pytest.raises(Exception) as failure:
            generate(client, sample_image)
        message = str(failure.value)
        assert "Out of memory while decoding frames (1 attempt(s))" in message     # the phase that failed, in words
        assert "Traceback" not in message
        records = oom_log(app)
        assert records[-1]["outcome"] == "failed" and records[-1]["suggestion"]
        assert list(app.outputs.glob("*.mp4")) == []
        path, info = generate(client, sample_image)
        assert info["attempts"] == 1 and video.probe_video(path).frames == FRAMES
    finally:
        app.stop()


def test_always_failing_is_bounded_and_the_app_keeps_serving(tmp_path, sample_image):
    app = RunningApp(tmp_path, extra_env={"I2V_INJECT_OOM": "always", "I2V_MAX_ATTEMPTS": "3",
                                          "I2V_SIMULATED_DEVICE": CARD})
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
