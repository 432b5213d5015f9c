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

    request = build_request((1280, 720), prompt="x", resolution=768, num_frames=24)
    free_after = int(card_gib * GIB * 0.9)
    suggestion = suggest_after_oom(request, free_after, "fp16", "cuda")
    if suggestion is None:
        pytest.skip(f"nothing fits {card_gib} GiB")      # only allowed for the smallest cards
    suggested = request.replace(**{k: v for k, v in suggestion.items()})
    model = load_memory_model()
    assert predict(model, suggested, dtype="fp16").peak_bytes <= free_after
    assert predict(model, suggested, dtype="fp16").peak_bytes < predict(model, request, dtype="fp16").peak_bytes
