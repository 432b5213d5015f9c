"""The chunked plans' denoise peak at off-grid shapes (within 3 % of a fresh meta trace) and the decoded frames'
copies (16 bytes per RGB value, counted on diffusers' own decode and denormalise code)."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from i2v.core.memory import decoded_video_bytes, load_model, phase_activations
from i2v.core.request import GenerationRequest
from i2v.core.units import GIB

TOLERANCE = 0.03
TINY_BUDGET = 4096
TINY_POINTS = ((256, 256, 4), (512, 256, 8))             # the traced grid of the tiny chunked tables
TINY_OFF_GRID = ((384, 384, 6), (256, 256, 12))
# The shapes (-14 % and +9 % by straight interpolation) and off-grid ones, (w, h, frames, budget, split).
FULL_OFF_GRID = ((256, 256, 16, 4096, True), (384, 384, 8, 4096, False), (640, 640, 12, 16384, True),
                 (768, 432, 24, 65536, False), (512, 512, 24, 4096, True))


def request(width, height, frames, **plan):
    return GenerationRequest(prompt="", width=width, height=height, num_frames=frames, fps=16,
                             num_inference_steps=50, guidance_scale=9.0, resolution=min(width, height), **plan)


@pytest.fixture(scope="module")
def tiny():
    """The tiny model on meta (fp32) and its committed profile with chunked tables traced at TINY_POINTS."""
    from i2v import profile, profiles
    from i2v.configs import load_constants
    from i2v.tiny_model import tiny_configs

    meta = profile.build_meta_model("fp32", configs=tiny_configs())
    data = copy.deepcopy(profiles.profile_for(profiles.source_for("tiny", "tiny"), "fp32").profile)
    phases = data["dtypes"]["fp32"]["phases"]
    for split in (False, True):
        phases[profile.plan_table(TINY_BUDGET, split)] = [
            {"width": w, "height": h, "frames": f,
             "bytes": profile.trace_unet_step(meta, w, h, f, 2, cfg_split=split, chunk_tokens=TINY_BUDGET)[0]}
            for w, h, f in TINY_POINTS]
    return meta, load_model(data, load_constants())


@pytest.mark.parametrize("split", [False, True])
def test_tiny_chunked_peak_at_off_grid_shapes_is_within_3_percent_of_a_fresh_trace(tiny, tmp_path, split):
    from i2v import profile, profile_points
    from i2v.tiny_model import tiny_configs

    meta, model = tiny
    cache = tmp_path / "points.json"
    traced = profile_points.attach(model, cache=cache, configs=tiny_configs())
    for w, h, f in TINY_OFF_GRID:
        r = request(w, h, f, chunk_tokens=TINY_BUDGET, cfg_split=split)
        fresh = profile.trace_unet_step(meta, w, h, f, 2, cfg_split=split, chunk_tokens=TINY_BUDGET)[0]
        assert phase_activations(traced, r, "fp32")["denoise"] == pytest.approx(fresh, rel=TOLERANCE), (w, h, f)
    assert traced.tracer.traced == len(TINY_OFF_GRID) and cache.is_file()
    # a grid point is the profile's own; a second model over the same cache traces nothing
    again = profile_points.attach(model, cache=cache, configs=tiny_configs())
    for w, h, f in TINY_OFF_GRID + TINY_POINTS:
        phase_activations(again, request(w, h, f, chunk_tokens=TINY_BUDGET, cfg_split=split), "fp32")
    assert again.tracer.traced == 0


def decode_path(vae, latents, chunk: int):
    """What i2v.pipeline.decode_frames runs on the GPU: I2VGenXLPipeline.decode_latents per chunk (float32
    pieces), torch.cat, and postprocess_video's denormalise (what stays on the device before .cpu())."""
    import torch
    from diffusers.image_processor import VaeImageProcessor
    from diffusers.pipelines.deprecated.i2vgen_xl.pipeline_i2vgen_xl import I2VGenXLPipeline

    pipe = SimpleNamespace(vae=vae)
    pieces = [I2VGenXLPipeline.decode_latents(pipe, latents[:, :, start:start + chunk], decode_chunk_size=chunk)
              for start in range(0, latents.shape[2], chunk)]
    video = torch.cat(pieces, dim=2)
    return VaeImageProcessor.denormalize(video[0].permute(1, 0, 2, 3))


@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_decoded_frames_are_counted_at_16_bytes_per_value(dtype):
    """After the last vae.decode the pieces, their cat and the two denormalise temporaries are all alive."""
    import torch

    from i2v import profile

    width, height, frames = 64, 48, 6
    values = 3 * width * height * frames

    def after_decode():      # the float32 pieces as decode_latents returns them, then the rest of the path
        pieces = [torch.zeros((1, 3, 2, height, width), dtype=torch.float32, device="meta") for _ in range(3)]
        video = torch.cat(pieces, dim=2)
        from diffusers.image_processor import VaeImageProcessor

        return VaeImageProcessor.denormalize(video[0].permute(1, 0, 2, 3))

    peak = profile.trace_peak(torch.nn.Module(), after_decode)
    r = request(width, height, frames)
    assert decoded_video_bytes(r, dtype) == peak == 16 * values


def test_the_whole_tiny_decode_path_stays_under_the_prediction(tiny):
    import torch

    from i2v import profile

    meta, model = tiny
    width, height, frames, chunk = 256, 256, 8, 2
    latents = torch.zeros((1, 4, frames, height // 8, width // 8), device="meta")
    peak = profile.trace_peak(meta.vae, lambda: decode_path(meta.vae, latents, chunk), [latents])
    predicted = phase_activations(model, request(width, height, frames, decode_chunk_size=chunk), "fp32")["decode"]
    assert peak <= predicted
    values = 3 * width * height * frames
    assert peak > 16 * values                # the copies alone: what the old 8-12 bytes per value missed


def test_the_copies_add_three_quarters_of_a_gib_at_1024x1024x32():
    r = request(1024, 1024, 32)
    assert (decoded_video_bytes(r, "fp16") - 8 * 3 * 1024 * 1024 * 32) / GIB == pytest.approx(0.75)


@pytest.mark.slow
@pytest.mark.parametrize("width, height, frames, budget, split", FULL_OFF_GRID)
def test_full_size_chunked_peak_is_within_3_percent_of_a_fresh_trace(tmp_path, width, height, frames, budget,
                                                                      split):
    """Full-size I2VGen-XL on meta: a few seconds to a minute per shape."""
    from i2v import profile, profile_points
    from i2v.configs import load_memory_model

    model = profile_points.attach(load_memory_model(), cache=tmp_path / "points.json")
    r = request(width, height, frames, chunk_tokens=budget, cfg_split=split)
    predicted = phase_activations(model, r, "fp16")["denoise"]
    meta = profile.build_meta_model("fp16")
    fresh = profile.trace_unet_step(meta, width, height, frames, 2, cfg_split=split, chunk_tokens=budget)[0]
    assert predicted == pytest.approx(fresh, rel=TOLERANCE)
