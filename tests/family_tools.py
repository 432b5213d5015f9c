"""Shared helpers of the tiny-model family tests (I2VGen-XL, Wan 2.2, LTX-Video on the CPU): the gradient test
picture, the seeded CPU generator the driver uses, a fixture printing a module's measured figures, a timed tiny
build, `main.py generate` on a tiny model, and the bare diffusers run from a sidecar's parameters compared with the
app's MP4 (PSNR). Sizes, seeds and frame counts stay in each test module; they come in as arguments. torch and
diffusers are imported inside the helpers: a module that skips without them still imports this one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT


def gradient_image(width: int, height: int, square: bool = True):
    """A red ramp left to right, a green one top to bottom and, with `square`, a blue square in the upper left
    quarter (PIL image)."""
    from PIL import Image

    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height)[:, None]
    if square:
        pixels[height // 4: height // 2, width // 4: width // 2, 2] = 255
    return Image.fromarray(pixels)


def seeded_generator(seed: int):
    """What the driver does: the global seed, and a CPU generator for the pipeline."""
    import torch

    torch.manual_seed(seed)
    return torch.Generator("cpu").manual_seed(seed)


def timings_fixture(timings: dict):
    """A module-scoped autouse fixture printing `timings` after the module (run with -s to see them)."""
    @pytest.fixture(scope="module", autouse=True)
    def report_timings():
        yield
        for name, value in timings.items():
            print(f"{name}: {value:.3g}" if isinstance(value, float) else f"{name}: {value}")

    return report_timings


def build_tiny(runtime, timings: dict):
    """The family runtime's tiny pipeline in fp32, its build time in timings["build (s)"]."""
    import torch

    started = time.perf_counter()
    built = runtime.build_pipeline("tiny", "", torch.float32)
    timings["build (s)"] = time.perf_counter() - started
    return built


@contextmanager
def counting_calls(modules: dict):
    """Counts the forward calls of each named module while inside: yields {name: calls} (a name appears once
    its module was called); the hooks come off on the way out."""
    fired: dict[str, int] = {}
    handles = [module.register_forward_pre_hook(lambda *_, name=name: fired.__setitem__(name, fired.get(name, 0) + 1))
               for name, module in modules.items()]
    try:
        yield fired
    finally:
        for handle in handles:
            handle.remove()


def pipe_fixtures(runtime, timings: dict, plain_latents):
    """Two module-scoped fixtures, to be bound to the names `pipe` and `baseline`: the family runtime's tiny
    pipeline (build_tiny), and plain_latents(pipe), the plain run the exact parts are held to."""
    @pytest.fixture(scope="module")
    def pipe():
        return build_tiny(runtime, timings)

    @pytest.fixture(scope="module")
    def baseline(pipe):
        return plain_latents(pipe)

    return pipe, baseline


def app_latents(runtime, pipe, req, image, timings: dict | None = None):
    """The family runtime's denoising call as the app makes it (its call_kwargs, the driver's seeding), without
    the decode: the latents. With timings: the first such run's time in timings["denoise run (s)"]."""
    import torch

    started = time.perf_counter()
    with torch.no_grad():
        latents = pipe(**runtime.call_kwargs(req, image, seeded_generator(req.seed))).frames
    if timings is not None:
        timings.setdefault("denoise run (s)", time.perf_counter() - started)
    return latents


def generate_with_cli(tmp_path: Path, image: Path, model: str, frames: int, seed: int = 7) -> tuple[dict, dict]:
    """`main.py generate` on a tiny model (256 px, 2 steps, "a boat") with its outputs and logs under tmp_path:
    the command's JSON result and the video's sidecar."""
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"))
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "generate", "--image", str(image),
                           "--model", model, "--prompt", "a boat", "--resolution", "256",
                           "--frames", str(frames), "--steps", "2", "--seed", str(seed), "--json"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    return result, json.loads(Path(result["sidecar_path"]).read_text())


def bare_video(pipe, image: Path, ran: dict, out_path: Path, **family_kwargs) -> Path:
    """The bare diffusers pipeline called with a sidecar's parameters (`ran`) and the driver's seeding, its
    frames written as an MP4 by the app's encoder. family_kwargs: what only that family's call takes."""
    import torch
    from PIL import Image

    from i2v.video import write_video

    torch.manual_seed(ran["seed"])
    with torch.no_grad():
        frames = pipe(image=Image.open(image).convert("RGB"), prompt=ran["prompt"],
                      negative_prompt=ran["negative_prompt"], height=ran["height"], width=ran["width"],
                      num_frames=ran["num_frames"], num_inference_steps=ran["num_inference_steps"],
                      guidance_scale=ran["guidance_scale"], generator=torch.Generator("cpu").manual_seed(ran["seed"]),
                      output_type="np", **family_kwargs).frames[0]
    return write_video((np.clip(frames, 0, 1) * 255).round().astype(np.uint8), ran["fps"], out_path=out_path)


def decoded(path) -> np.ndarray:
    """An MP4's frames (frames, height, width, 3) as ints."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    width, height = next(reader)["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]).astype(int)


def compare_videos(path_a, path_b) -> tuple[np.ndarray, np.ndarray, float]:
    """Both MP4s decoded, and their PSNR in dB (inf when equal)."""
    a, b = decoded(path_a), decoded(path_b)
    mse = float(np.mean((a - b) ** 2))
    psnr = 10 * np.log10(255 ** 2 / mse) if mse else float("inf")
    return a, b, psnr
