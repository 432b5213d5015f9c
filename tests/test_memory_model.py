"""The memory model over the committed profile: reference figures, monotonicity, speed, config validation."""
import time

import pytest

from i2v.configs import load_constants, load_memory_model, load_profile, read_toml
from i2v.core.memory import (
    CONSTANT_SPECS,
    PHASES,
    ProfileError,
    load_model,
    parse_constants,
    phase_activations,
    predict,
)
from i2v.core.request import GenerationRequest
from i2v.core.units import GIB
from i2v.paths import configs_dir

# The traced reference figures (docs/memory-engine.md): UNet activations, fp16, CFG batch 2, fused attention (GiB).
FACTS_UNET_GIB = {(512, 512, 16): 2.59, (1024, 1024, 32): 20.65, (768, 768, 24): 8.72, (1280, 704, 16): 8.88}
TOLERANCE = 0.05
MAX_PREDICT_SECONDS = 1e-3


@pytest.fixture(scope="module")
def model():
    return load_memory_model()


def request(width=512, height=512, frames=16, **knobs):
    return GenerationRequest(prompt="", width=width, height=height, num_frames=frames, fps=16,
                             num_inference_steps=50, guidance_scale=9.0, resolution=min(width, height), **knobs)


@pytest.mark.parametrize("size", sorted(FACTS_UNET_GIB))
def test_unet_activations_match_facts(model, size):
    got = phase_activations(model, request(*size), "fp16")["denoise"] / GIB
    assert got == pytest.approx(FACTS_UNET_GIB[size], rel=TOLERANCE)


def test_without_cfg_is_half(model):
    cfg = phase_activations(model, request(), "fp16")["denoise"]
    plain = phase_activations(model, request().replace(guidance_scale=1.0), "fp16")["denoise"]
    assert plain == pytest.approx(cfg / 2, rel=0.02)


@pytest.mark.parametrize("offload", ["none", "model", "group", "sequential"])
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_monotone_in_frames_and_pixels(model, offload, dtype):
    frames = [predict(model, request(frames=f), offload, dtype).peak_bytes for f in range(2, 65, 3)]
    assert frames == sorted(frames) and frames[0] < frames[-1]
    sizes = [predict(model, request(s, s * 9 // 16 // 8 * 8), offload, dtype).peak_bytes for s in range(256, 2049, 64)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_offload_modes_order(model):
    big = request(1024, 576, 24)
    peaks = [predict(model, big, mode).peak_bytes for mode in ("none", "model", "group")]
    assert peaks[0] > peaks[1] > peaks[2]
    hosts = [predict(model, big, mode).host_bytes for mode in ("none", "model", "group", "sequential")]
    assert hosts[2] > hosts[0] == hosts[1] == hosts[3]        # streams pin extra host copies


# The prototype's figures (fp16, activations only, GiB) that the engine reproduces: plan -> size -> GiB.
PLAN_GIB = {
    (True, 0): {(512, 512, 16): 1.30, (1280, 704, 16): 4.44, (1024, 1024, 32): 10.33},
    (True, 16384): {(512, 512, 16): 0.62, (1024, 1024, 32): 2.89},
    (False, 16384): {(512, 512, 16): 0.89},
}


@pytest.mark.parametrize("plan", sorted(PLAN_GIB))
def test_plan_activations_match_the_traced_prototype(model, plan):
    split, budget = plan
    for size, gib in PLAN_GIB[plan].items():
        got = phase_activations(model, request(*size, cfg_split=split, chunk_tokens=budget), "fp16")["denoise"]
        assert got / GIB == pytest.approx(gib, rel=TOLERANCE), (plan, size)


def test_plans_lower_the_denoise_peak_in_order(model):
    big = request(1024, 1024, 32)
    figures = [phase_activations(model, big.replace(**changes), "fp16")["denoise"] for changes in (
        {}, {"cfg_split": True}, {"cfg_split": True, "chunk_tokens": 65536},
        {"cfg_split": True, "chunk_tokens": 16384}, {"cfg_split": True, "chunk_tokens": 4096})]
    assert figures == sorted(figures, reverse=True) and figures[-1] < figures[0] / 6


def test_fp8_weights_shrink_only_the_unet(model):
    plain = predict(model, request(), "none")
    fp8 = predict(model, request(weights_dtype="fp8"), "none")
    saved = plain.phases[0].weights_bytes - fp8.phases[0].weights_bytes
    unet = model.tables["fp16"].weights["unet"]
    assert 0 < saved <= (unet["bytes"] - unet["fp8_bytes"]) * model.constants.weights_overhead + 1024


def test_fp32_costs_more(model):
    assert predict(model, request(), dtype="fp32").peak_bytes > predict(model, request()).peak_bytes


def test_prediction_is_fast(model):
    r = request(1280, 704, 24, offload="model")
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        predict(model, r)
    assert (time.perf_counter() - started) / runs < MAX_PREDICT_SECONDS


def test_prediction_lists_every_phase_and_reserve(model):
    p = predict(model, request(), reserve_bytes=0)
    assert [ph.phase for ph in p.phases] == list(PHASES)
    assert p.peak_bytes == p.footprint_bytes == max(ph.total_bytes for ph in p.phases)
    assert predict(model, request(), reserve_bytes=GIB).peak_bytes == p.peak_bytes + GIB
    assert p.as_dict()["label"] == "predicted" and not p.calibrated


def test_calibration_factors_apply_and_flag(model):
    profile, constants = load_profile(), load_constants()
    calibrated = load_model(profile, constants, {"factors": {"denoise": 1.5}})
    plain = predict(model, request()).phases[PHASES.index("denoise")].activation_bytes
    scaled = predict(calibrated, request()).phases[PHASES.index("denoise")].activation_bytes
    assert scaled == pytest.approx(plain * 1.5, rel=1e-6) and calibrated.calibrated
    with pytest.raises(ProfileError):
        load_model(profile, constants, {"factors": {"nonsense": 1.0}})


def test_memory_toml_names_every_constant():
    data = read_toml(configs_dir() / "memory.toml")
    assert set(data) == set(CONSTANT_SPECS)
    parse_constants(data)
    with pytest.raises(ProfileError, match="unknown key"):
        parse_constants({**data, "typo": 1.0})
    with pytest.raises(ProfileError, match="missing key"):
        parse_constants({k: v for k, v in data.items() if k != "reserve_gib"})
    with pytest.raises(ProfileError):
        parse_constants({**data, "activation_overhead": "big"})


def test_tiling_and_decode_chunks_lower_decode(model):
    big = request(1024, 1024, 32)
    decode = PHASES.index("decode")
    plain = predict(model, big.replace(decode_chunk_size=4)).phases[decode].activation_bytes
    one = predict(model, big).phases[decode].activation_bytes
    tiled = predict(model, big.replace(vae_tiling=True)).phases[decode].activation_bytes
    assert plain > one > tiled


def test_cpu_predictions_have_no_cuda_context(model):
    from i2v.core.memory import for_device

    cpu = predict(for_device(model, "cpu"), request())
    assert all(p.context_bytes == 0 for p in cpu.phases)
    assert cpu.peak_bytes < predict(for_device(model, "cuda"), request()).peak_bytes


def test_a_measured_cuda_context_replaces_the_assumed_one_for_every_model(tmp_path):
    """bench/gpu_truth.py stores the CUDA context it measured in the calibration's measured_terms: the constants
    then use it (for every family's model, calibrated or not); without it, memory.toml's assumption stands."""
    import json
    import shutil

    from i2v import configs
    from i2v.core.units import GIB

    for name in ("memory.toml", "memory_profile.json"):
        shutil.copy(configs.configs_dir() / name, tmp_path / name)
    assumed = configs.load_constants(tmp_path).cuda_context_gib
    (tmp_path / "calibration.json").write_text(json.dumps(
        {"factors": {}, "measured_terms": {"cuda_context_bytes": int(0.85 * GIB), "allocator_overhead": 1.1}}))
    assert configs.load_constants(tmp_path).cuda_context_gib == pytest.approx(0.85)
    assert assumed != pytest.approx(0.85)
    uncalibrated = configs.memory_model_for(configs.load_profile(tmp_path), calibrated=False, folder=tmp_path)
    assert uncalibrated.constants.cuda_context_gib == pytest.approx(0.85)
