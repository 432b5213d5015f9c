from i2v.configs import load_memory_model
from i2v.core.clamp import clamp
from i2v.core.memory import for_device, predict
from i2v.core.request import build_request
from i2v.core.units import GIB


def test_on_cpu_offload_saves_nothing_so_the_clamp_uses_exact_chunking_instead():
    model = for_device(load_memory_model(), "cpu")
    request = build_request((1280, 720), prompt="x", resolution=512, num_frames=16)
    plain = predict(model, request, dtype="fp32").peak_bytes
    assert predict(model, request.replace(offload="model"), dtype="fp32").peak_bytes == plain
    fitted, adjustments = clamp(request, int(plain * 0.8), model, dtype="fp32", device_kind="cpu")
    assert fitted.offload == "none" and predict(model, fitted, dtype="fp32", device_kind="cpu").peak_bytes <= plain * 0.8
    assert adjustments == [] and (fitted.num_frames, fitted.resolution) == (16, 512)    # the settings are kept
    assert fitted.cfg_split or fitted.chunk_tokens      # RAM saved by running the UNet in exact pieces


def test_on_cuda_offload_is_the_first_big_saving():
    model = load_memory_model()
    request = build_request((1280, 720), prompt="x", resolution=512, num_frames=16)
    assert predict(model, request.replace(offload="model")).peak_bytes < predict(model, request).peak_bytes - GIB


def test_time_budget_caps_steps_from_measured_speed():
    from i2v.advisor import Advisor

    advisor = Advisor(time_budget_s=60.0)
    request = build_request((1280, 720), prompt="x", resolution=512, num_frames=8, num_inference_steps=50)
    advisor.record_denoise(request, seconds=20.0, steps=10)          # measured: 2 s per step at this size
    assert abs(advisor.seconds_per_step(request) - 2.0) < 1e-6
    clamped, adjustments = advisor.clamp(request)
    assert clamped.num_inference_steps == 30
    assert any(a.field == "num_inference_steps" and "time budget" in a.reason for a in adjustments)
    assert Advisor().clamp(request)[0].num_inference_steps == 50      # no budget: steps untouched
