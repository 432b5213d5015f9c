"""The memory model reads a profile's "family" section: a small synthetic Wan-like profile (no torch)."""
import pytest

from i2v.configs import load_memory_model
from i2v.core.memory import (
    PHASES,
    ProfileError,
    estimate_time,
    family_info,
    flops_per_step,
    host_ram_bytes,
    load_model,
    phase_activations,
    plan_parts_apply,
    predict,
)
from i2v.core.plans import I2VGEN_PARTS
from i2v.core.request import GenerationRequest
from i2v.core.units import GIB

MIB = 2**20
WEIGHTS = {"text_encoder": 10 * GIB, "transformer": 9 * GIB, "vae": 1 * GIB}
PER_VALUE = 6


def wan_like(dtype="bf16", **family_changes):
    """Three components, no image encoder, one batch-1 transformer call per table, whole-video decode."""
    def line(scale):    # bytes = scale x frames x pixels at two sizes and two frame counts
        return [{"width": w, "height": h, "frames": f, "bytes": scale * w * h * f, "flops": 1000 * w * h * f}
                for w, h in ((480, 480), (1280, 704)) for f in (17, 81)]

    section = {
        "weights": {name: {"bytes": size, "largest_module_bytes": size // 100, "params": size // 2,
                           **({"fp8_bytes": size // 2} if name == "transformer" else {})}
                    for name, size in WEIGHTS.items()},
        "phases": {"text_encode": [{"width": 0, "height": 0, "frames": 1, "bytes": 300 * MIB}],
                   "image_encode": [{"width": 0, "height": 0, "frames": 1, "bytes": 0}],
                   "vae_encode": [{"width": w, "height": h, "frames": 1, "bytes": 50 * w * h}
                                  for w, h in ((480, 480), (1280, 704))],
                   "denoise_cfg": line(40), "denoise_cfg_split": line(40), "denoise_nocfg": line(40),
                   "decode": line(100), "decode_tiled": line(30)},
        "decoded_bytes_per_value": PER_VALUE,
    }
    family = {"name": "wan-like", "components": list(WEIGHTS),
              "active_component": {"text_encode": "text_encoder", "image_encode": None, "vae_encode": "vae",
                                   "denoise": "transformer", "decode": "vae"},
              "model_offload_resident": {"text_encode": ["text_encoder"], "image_encode": ["text_encoder"],
                                         "vae_encode": ["text_encoder", "vae"], "denoise": ["transformer", "vae"],
                                         "decode": ["vae"]},
              "fp8_component": "transformer", "denoise_calls_per_step": 2, "cfg_split_applies": False,
              "decode_chunk_applies": False, "decoded_bytes_per_value": PER_VALUE, **family_changes}
    return {"version": 1, "family": family, "knobs": {"vae_tile_sample_size": 256, "vae_scale_factor": 16},
            "dtypes": {dtype: section}}


@pytest.fixture(scope="module")
def constants():
    return load_memory_model().constants


@pytest.fixture()
def wan(constants):
    return load_model(wan_like(), constants)


def request(width=832, height=480, frames=49, **plan):
    return GenerationRequest(prompt="x", width=width, height=height, num_frames=frames, fps=24,
                             num_inference_steps=30, guidance_scale=5.0, resolution=min(width, height), **plan)


def by_phase(prediction):
    return {p.phase: p for p in prediction.phases}


def test_family_info_fills_defaults_and_a_profile_without_one_is_i2vgen_xl(wan):
    info = family_info(wan)
    assert info["name"] == "wan-like" and info["denoise_calls_per_step"] == 2
    assert info["active_component"]["image_encode"] is None and info["text_encoder_cpu_applies"] is True
    info["components"].append("changed")                               # a copy
    assert "changed" not in family_info(wan)["components"]
    full = family_info(load_memory_model())
    assert full["name"] == "i2vgen-xl" and full["fp8_component"] == "unet" and full["cfg_split_applies"]


def test_plan_parts_follow_the_family_and_the_traced_tables(wan):
    parts = plan_parts_apply(wan)
    assert parts == {"offload": True, "cfg_split": False, "chunk_tokens": False, "weights_dtype": True,
                     "decode_chunk": False, "vae_tiling": True, "text_encoder_cpu": True}
    full = plan_parts_apply(load_memory_model())
    assert tuple(k for k, v in full.items() if v) == I2VGEN_PARTS


def test_a_phase_without_a_component_holds_nothing_and_offload_follows_the_family(wan):
    for offload in ("model", "group", "sequential"):
        phase = by_phase(predict(wan, request(), offload, "bf16"))["image_encode"]
        resident = WEIGHTS["text_encoder"] * wan.constants.weights_overhead if offload == "model" else 0
        assert phase.activation_bytes == 0 and phase.weights_bytes == int(resident)
    model = by_phase(predict(wan, request(), "model", "bf16"))
    denoise = (WEIGHTS["transformer"] + WEIGHTS["vae"]) * wan.constants.weights_overhead
    assert model["denoise"].weights_bytes == int(denoise)


def test_denoise_is_one_call_and_a_step_is_two_calls_of_it(wan):
    r = request()
    work = r.width * r.height * r.num_frames
    assert phase_activations(wan, r, "bf16")["denoise"] == pytest.approx(40 * work, rel=1e-9)
    assert phase_activations(wan, r.replace(cfg_split=True), "bf16") == phase_activations(wan, r, "bf16")
    assert flops_per_step(wan, r, "bf16") == pytest.approx(2 * 1000 * work, rel=1e-9)
    assert flops_per_step(wan, r.replace(guidance_scale=1.0), "bf16") == pytest.approx(1000 * work, rel=1e-9)
    one = estimate_time(wan, r.replace(guidance_scale=1.0), 100.0, "bf16")
    two = estimate_time(wan, r, 100.0, "bf16")
    assert two.per_step_s == pytest.approx(2 * one.compute_s + wan.constants.unet_call_overhead_s, rel=1e-6)


def test_decode_uses_the_whole_video_and_the_familys_bytes_per_value(wan):
    r = request(decode_chunk_size=1)
    values = 3 * r.width * r.height * r.num_frames
    expected = 100 * r.width * r.height * r.num_frames + PER_VALUE * values
    assert phase_activations(wan, r, "bf16")["decode"] == pytest.approx(expected, rel=1e-9)
    assert phase_activations(wan, r.replace(decode_chunk_size=8), "bf16")["decode"] == \
        phase_activations(wan, r, "bf16")["decode"]


def test_text_encoder_on_the_cpu_leaves_no_gpu_weights_and_the_same_host_ram(wan):
    r, cpu = request(), request(text_encoder_cpu=True)
    overhead = wan.constants.weights_overhead
    for offload in ("none", "model", "group", "sequential"):
        on, off = by_phase(predict(wan, r, offload, "bf16")), by_phase(predict(wan, cpu, offload, "bf16"))
        assert off["text_encode"].activation_bytes == 0 < on["text_encode"].activation_bytes
        te = (WEIGHTS["text_encoder"] if offload in ("none", "model") else
              WEIGHTS["text_encoder"] // 100 * wan.constants.sequential_module_copies) * overhead
        assert on["text_encode"].weights_bytes - off["text_encode"].weights_bytes == pytest.approx(te, abs=2)
        if offload != "none":
            assert off["text_encode"].weights_bytes == 0
        if offload == "none":
            for phase in PHASES:
                assert on[phase].weights_bytes - off[phase].weights_bytes == \
                    pytest.approx(WEIGHTS["text_encoder"] * overhead, abs=2)
    assert predict(wan, cpu, "none", "bf16").host_bytes == predict(wan, r, "none", "bf16").host_bytes
    # group offload pins extra copies of the weights it offloads only
    copies = wan.constants.group_pinned_copies
    grouped = predict(wan, r, "group", "bf16").host_bytes - predict(wan, cpu, "group", "bf16").host_bytes
    assert grouped == pytest.approx(WEIGHTS["text_encoder"] * (copies - 1), abs=2)
    assert host_ram_bytes(wan, "fp16", "group", "bf16") == pytest.approx(
        wan.constants.host_base_gib * GIB + sum(WEIGHTS.values()) * copies, abs=2)


def test_bf16_and_fp8_storage_of_the_familys_denoiser(wan):
    plain = by_phase(predict(wan, request(), "none", "bf16"))["denoise"].weights_bytes
    fp8 = by_phase(predict(wan, request(weights_dtype="fp8"), "none", "bf16"))["denoise"].weights_bytes
    assert plain - fp8 == pytest.approx(WEIGHTS["transformer"] / 2 * wan.constants.weights_overhead, abs=2)


def test_i2vgen_profile_figures_are_unchanged_by_the_family_rules():
    model = load_memory_model()
    r = request(512, 512, 16, offload="model")
    phases = by_phase(predict(model, r, "model"))
    weights = model.tables["fp16"].weights
    assert phases["vae_encode"].weights_bytes == int((weights["image_encoder"]["bytes"] + weights["vae"]["bytes"])
                                                     * model.constants.weights_overhead)
    assert phases["image_encode"].activation_bytes > 0


@pytest.mark.parametrize("change, match", [
    ({"denoise_calls_per_step": 0}, "denoise_calls_per_step"),
    ({"active_component": {"denoise": "unet"}}, "not in"),
    ({"decode_chunk_applies": "no"}, "decode_chunk_applies"),
])
def test_a_bad_family_section_is_refused(constants, change, match):
    with pytest.raises(ProfileError, match=match):
        load_model(wan_like(**change), constants)
