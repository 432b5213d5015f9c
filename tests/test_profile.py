"""The committed configs/memory_profile.json still matches what the tracer produces (a few small points),
and a slow opt-in check of the tracer against a real full-size UNet run on CPU."""
import time

import pytest

from i2v.configs import load_memory_model, load_profile
from i2v.core.memory import (
    PROFILE_VERSION,
    VAE_SCALE_FACTOR,
    VAE_TILE_SAMPLE_SIZE,
    phase_activations,
)
from i2v.core.request import GenerationRequest

SMALL = (256, 256)
SMALL_FRAMES = 8
SMALL_CHUNK = 1
DTYPE = "fp16"
MEASURE_TOLERANCE = 0.05


def find(points, width, height, frames):
    return next(p["bytes"] for p in points if (p["width"], p["height"], p["frames"]) == (width, height, frames))


@pytest.fixture(scope="module")
def meta_model():
    from i2v import profile

    return profile.build_meta_model(DTYPE)


@pytest.fixture(scope="module")
def committed():
    return load_profile()


def test_profile_knobs_match_code(committed):
    assert committed["version"] == PROFILE_VERSION
    from i2v import profile

    assert committed["knobs"] == {"chunk_budgets": list(profile.CHUNK_BUDGETS), "fp8_storage": profile.FP8_STORAGE,
                                  "vae_tile_sample_size": VAE_TILE_SAMPLE_SIZE, "vae_scale_factor": VAE_SCALE_FACTOR}
    for dtype, points in profile.CHUNKED_POINTS.items():
        phases = committed["dtypes"][dtype]["phases"]
        for budget in profile.CHUNK_BUDGETS:
            for split in (False, True):
                traced = {(p["width"], p["height"], p["frames"]) for p in phases[profile.plan_table(budget, split)]}
                assert traced == set(points)


def test_committed_profile_matches_regenerated_points(meta_model, committed):
    from i2v import profile

    phases = committed["dtypes"][DTYPE]["phases"]
    w, h = SMALL
    assert profile.trace_text_encode(meta_model) == phases["text_encode"][0]["bytes"]
    assert profile.trace_image_encode(meta_model) == phases["image_encode"][0]["bytes"]
    assert profile.trace_vae_encode(meta_model, w, h) == find(phases["vae_encode"], w, h, 1)
    cfg, flops = profile.trace_unet_step(meta_model, w, h, SMALL_FRAMES, 2, flops=True)
    assert cfg == find(phases["denoise_cfg"], w, h, SMALL_FRAMES)
    point = next(p for p in phases["denoise_cfg"] if (p["width"], p["height"], p["frames"]) == (w, h, SMALL_FRAMES))
    assert flops == point["flops"]
    nocfg, _ = profile.trace_unet_step(meta_model, w, h, SMALL_FRAMES, 1)
    assert nocfg == find(phases["denoise_nocfg"], w, h, SMALL_FRAMES)
    assert profile.trace_vae_decode(meta_model, w, h, SMALL_CHUNK) == find(phases["decode"], w, h, SMALL_CHUNK)
    tiled = profile.trace_vae_decode(meta_model, w, h, SMALL_CHUNK, tiling=True)
    assert tiled == find(phases["decode_tiled"], w, h, SMALL_CHUNK)


@pytest.mark.parametrize("split, budget", [(True, 0), (False, 4096), (True, 16384), (True, 65536)])
def test_committed_plan_traces_match_a_fresh_trace(meta_model, committed, split, budget):
    """CFG split and the exact chunked UNet, traced again at the smallest point."""
    from i2v import profile

    w, h = SMALL
    phases = committed["dtypes"][DTYPE]["phases"]
    peak, _ = profile.trace_unet_step(meta_model, w, h, SMALL_FRAMES, 2, cfg_split=split, chunk_tokens=budget)
    assert peak == find(phases[profile.plan_table(budget, split)], w, h, SMALL_FRAMES)
    assert peak < find(phases["denoise_cfg"], w, h, SMALL_FRAMES)     # and it saves memory


def test_committed_weights_match_the_build(meta_model, committed):
    from i2v import profile

    for name, module in meta_model.components().items():
        recorded = {k: v for k, v in committed["dtypes"][DTYPE]["weights"][name].items() if k != "fp8_bytes"}
        assert profile.weight_figures(module) == recorded
    fresh = profile.build_meta_model(DTYPE)
    fp8 = profile.fp8_weight_bytes(fresh.unet, DTYPE)
    assert fp8 == committed["dtypes"][DTYPE]["weights"]["unet"]["fp8_bytes"]
    assert fp8 < 0.6 * committed["dtypes"][DTYPE]["weights"]["unet"]["bytes"]   # most of the UNet is cast


@pytest.mark.slow
def test_real_cpu_unet_run_matches_prediction():
    """Full-size UNet, random float32 weights, one CFG forward on CPU at an off-grid size; the live tensor
    bytes of the real run (real SDPA kernel) are compared with the interpolated prediction."""
    import torch

    from i2v import profile

    width, height, frames = 384, 256, 8
    from diffusers.models.unets import I2VGenXLUNet

    torch.manual_seed(0)
    unet = I2VGenXLUNet.from_config(profile._read_config("unet")).eval()     # random float32 weights
    real = profile.MetaModel("fp32", unet, None, None, None)
    request = GenerationRequest(prompt="", width=width, height=height, num_frames=frames, fps=16,
                                num_inference_steps=1, guidance_scale=9.0, resolution=height)
    predicted = phase_activations(load_memory_model(), request, "fp32")["denoise"]
    started = time.perf_counter()
    measured, _ = profile.trace_unet_step(
        real, width, height, frames, 2,
        peak_fn=lambda module, run, inputs: profile.trace_peak(module, run, inputs, fused_sdpa=False))
    seconds = time.perf_counter() - started
    print(f"\nreal CPU UNet {width}x{height}x{frames} fp32 CFG: measured {measured / 2**30:.4f} GiB, "
          f"predicted {predicted / 2**30:.4f} GiB, ratio {measured / predicted:.4f}, {seconds:.1f} s")
    assert measured == pytest.approx(predicted, rel=MEASURE_TOLERANCE)
