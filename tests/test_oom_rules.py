"""Pure rules behind the OOM guard: recognising OOMs, fault specs, and suggestions on simulated devices."""
import pytest

from i2v.core import faults
from i2v.core.oom import is_oom
from i2v.core.request import build_request
from i2v.core.units import GIB


@pytest.mark.parametrize("type_name, message, expected", [
    ("OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB", True),
    ("RuntimeError", "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`", True),
    ("RuntimeError", "cuDNN error: CUDNN_STATUS_ALLOC_FAILED", True),
    ("RuntimeError", "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory", True),
    ("MemoryError", "", True),
    ("RuntimeError", "mat1 and mat2 shapes cannot be multiplied", False),
    ("ValueError", "height must be divisible by 8", False),
])
def test_oom_recognition(type_name, message, expected):
    assert is_oom(type_name, message) is expected


def test_fault_specs_fire_once_over_the_server_life():
    counter = faults.FaultCounter(faults.faults_from_env({"I2V_INJECT_OOM": "denoise:3"}))
    assert counter.plan_for_attempt() == {"oom": ("denoise", 3)}
    counter.record("denoise")
    counter.record("denoise")
    assert counter.plan_for_attempt() == {"oom": ("denoise", 1)}    # the next job fires at its first step
    counter.record("denoise")
    assert counter.plan_for_attempt() == {}                          # fired: later jobs run clean


def test_always_fires_in_every_attempt():
    counter = faults.FaultCounter(faults.faults_from_env({"I2V_INJECT_CRASH": "always"}))
    plan, kinds = counter.plan_for_attempt(), counter.always_kinds()
    assert faults.should_fire(plan, {"text_encode": 5}, {"text_encode": 1}, "text_encode", kinds) == ["crash"]
    assert faults.should_fire(plan, {"text_encode": 6}, {"text_encode": 2}, "text_encode", kinds) == []


@pytest.mark.parametrize("text", ["bogus", "denoise:x", "decode:0"])
def test_bad_fault_specs_are_rejected(text):
    with pytest.raises(ValueError, match="I2V_INJECT_OOM"):
        faults.parse_fault("oom", text)


@pytest.mark.parametrize("card_gib", [6, 8, 12, 16, 24])
def test_suggestion_fits_the_memory_measured_after_cleanup(card_gib):
    from i2v.configs import load_memory_model
    from i2v.core.memory import predict
    from i2v.runner import suggest_after_oom

    from i2v.core.fallback import ranked_request

    model = load_memory_model()
    request = ranked_request(build_request((1280, 720), prompt="x", resolution=768, num_frames=24), model, "fp16")
    free_after = int(card_gib * GIB * 0.9)
    suggestion = suggest_after_oom(request, free_after)       # from the ranking the request carries
    assert suggestion is not None or card_gib == 6, "only the smallest card may find nothing"
    if suggestion is None:
        return
    suggested = request.replace(**{k: v for k, v in suggestion.items()})
    assert predict(model, suggested, dtype="fp16").peak_bytes <= free_after
    assert predict(model, suggested, dtype="fp16").peak_bytes < predict(model, request, dtype="fp16").peak_bytes


def test_the_carried_ranking_falls_back_and_suggests_without_a_memory_model(monkeypatch):
    """The plan decided once, on the server: the ranking the fitted request carries gives every step after
    an OOM (forced parts fixed) with no memory model loaded; a request without one has no fallback."""
    from i2v import configs, profiles
    from i2v.core.clamp import fit
    from i2v.core.fallback import carried_next, carried_suggestion
    from i2v.core.memory import for_device

    def fallback_after_oom(request, phase):
        return carried_next(request, phase)

    def suggest_after_oom(request, free_bytes):
        return carried_suggestion(request, free_bytes)

    model = for_device(configs.load_memory_model(), "cuda")
    request = build_request((1280, 720), prompt="x", resolution=768, num_frames=24)
    forced = {"weights_dtype": "fp16", "vae_tiling": False}
    fitted = fit(request, 16 * GIB, model, forced=forced, carry=True).request
    loads = []
    for module, name in ((configs, "load_memory_model"), (configs, "full_size_model"),
                         (configs, "memory_model_for"), (profiles, "profile_for")):
        monkeypatch.setattr(module, name, lambda *a, _name=name, **k: loads.append(_name))
    current, steps = fitted, []
    while (step := fallback_after_oom(current, "denoise")) is not None and len(steps) < 40:
        assert step[0].ranking is not None and (step[0].weights_dtype, step[0].vae_tiling) == ("fp16", False)
        current, steps = step[0], steps + [step[1]]
    assert len(steps) >= 2 and any(not s.startswith("plan") for s in steps)       # plans, then settings
    decode = fallback_after_oom(fitted, "decode")
    assert decode is None or decode[0].plan.chunk_tokens == fitted.plan.chunk_tokens
    assert suggest_after_oom(fitted, 8 * GIB) is not None
    assert fallback_after_oom(request, "denoise") is None and suggest_after_oom(request, 8 * GIB) is None
    assert loads == []
