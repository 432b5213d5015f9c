"""Every exact plan gives the plain pipeline's result on the real (tiny) I2VGen-XL, through our own code path
(pipeline.configure_memory_knobs + sample_latents + decode_frames), and through `main.py generate`."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from i2v import pipeline as pl
from tests.conftest import ROOT

TOLERANCE = 1e-4          # max abs difference of latents (fp32 on CPU)
# (width, height, frames): sizes whose latent grids and frame counts do not divide the budgets evenly
SIZES = ((64, 64, 3), (96, 64, 5))
EXACT_PLANS = (
    {"cfg_split": True},
    {"chunk_tokens": 48},
    {"chunk_tokens": 100},
    {"cfg_split": True, "chunk_tokens": 37},
    {"cfg_split": True, "chunk_tokens": 256, "decode_chunk_size": 2},
)


@pytest.fixture(scope="module")
def loaded():
    return pl.load_pipeline(pl.choose_model("tiny"), device="cpu")


def request_for(width, height, frames, **plan):
    from i2v.core.request import GenerationRequest

    base = GenerationRequest(prompt="a boat", width=width, height=height, num_frames=frames, fps=8,
                             num_inference_steps=2, guidance_scale=7.5, seed=3, resolution=min(width, height))
    return base.replace(**plan)


def decoded_frames(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]).astype(int)


def run(loaded, image, request):
    latents = pl.sample_latents(loaded, image, request, request.seed, None)
    frames = pl.decode_frames(loaded, latents, request, None)
    return latents.detach().clone(), frames


@pytest.mark.parametrize("size", SIZES)
def test_each_exact_plan_equals_plain(loaded, size):
    from PIL import Image

    image = Image.new("RGB", (size[0] * 2, size[1] * 2), (120, 60, 30))
    plain_latents, plain_frames = run(loaded, image, request_for(*size))
    for plan in EXACT_PLANS:
        latents, frames = run(loaded, image, request_for(*size, **plan))
        difference = (latents - plain_latents).abs().max().item()
        assert difference <= TOLERANCE, (plan, difference)
        assert np.abs(frames.astype(int) - plain_frames.astype(int)).max() <= 1, plan   # uint8 rounding at most
    # and back to the plain plan: the wrappers come off, the result is the plain one again
    latents, _ = run(loaded, image, request_for(*size))
    assert (latents - plain_latents).abs().max().item() == 0


def test_fp8_weights_are_lossy_and_reversible(loaded):
    from PIL import Image

    image = Image.new("RGB", (128, 128), (10, 200, 30))
    plain, _ = run(loaded, image, request_for(64, 64, 3))
    fp8, _ = run(loaded, image, request_for(64, 64, 3, weights_dtype="fp8"))
    assert loaded.weights_dtype == "fp8"
    assert 0 < (fp8 - plain).abs().max().item()          # lossy: it changes the result
    again, _ = run(loaded, image, request_for(64, 64, 3))
    assert loaded.weights_dtype == "fp16"
    assert (again - plain).abs().max().item() == 0       # leaving fp8 reloads the exact weights


def test_generate_cli_honours_the_plan_flags(tmp_path, sample_image):
    """`main.py generate` with the plan flags: the plan that ran is in the JSON and sidecar, and the video
    matches the plain run's up to uint8 rounding and H.264."""
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"))
    base = [sys.executable, str(ROOT / "main.py"), "generate", "--image", str(sample_image), "--model", "tiny",
            "--prompt", "a dog", "--resolution", "256", "--frames", "3", "--steps", "1", "--seed", "5", "--json"]
    plain = subprocess.run(base, env=env, capture_output=True, text=True, timeout=300)
    planned = subprocess.run(base + ["--cfg-split", "--chunk-tokens", "1000", "--offload", "none",
                                     "--weights-dtype", "fp16", "--decode-chunk", "2"],
                             env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and planned.returncode == 0, (plain.stderr[-1500:], planned.stderr[-1500:])
    first, second = json.loads(plain.stdout), json.loads(planned.stdout)
    assert second["plan"] == {"offload": "none", "cfg_split": True, "chunk_tokens": 1000, "weights_dtype": "fp16",
                              "decode_chunk": 2, "vae_tiling": False, "text_encoder_cpu": False}
    assert first["plan"]["cfg_split"] is False and first["plan"]["chunk_tokens"] == 0
    assert json.loads(open(second["sidecar_path"]).read())["plan"] == second["plan"]
    a, b = (decoded_frames(r["video_path"]) for r in (first, second))
    # the decoded frames differ by at most one uint8 level (test above); H.264 spreads such a difference over a
    # few pixels of its block, so the videos are compared by PSNR
    mse = float(np.mean((a - b) ** 2))
    psnr = 10 * np.log10(255 ** 2 / mse) if mse else float("inf")
    assert a.shape == b.shape and psnr > 45, psnr
    bad = subprocess.run(base + ["--chunk-tokens", "-1"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert json.loads(bad.stdout)["error"]["key"] == "plan_invalid" and "chunk_tokens" in bad.stdout


def test_json_errors_are_json_with_a_nonzero_exit(tmp_path, sample_image):
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"))
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "generate", "--image", str(sample_image),
                           "--model", "tiny", "--prompt", "x", "--frames", "1000", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert error["key"] == "field_too_large" and "Frames" in error["message"]
