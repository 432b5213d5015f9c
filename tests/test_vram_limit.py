"""Sharing a card: --vram-limit / I2V_VRAM_LIMIT_GIB caps the budget the plans are chosen for, the worker
enforces it with the allocator's memory fraction, and the worker starts CUDA with expandable segments."""
import pytest

from i2v import gpu
from i2v.cli import build_parser
from i2v.core.units import GIB


def cuda_device(free_gib, held_gib=0.0):
    return gpu.DeviceInfo(kind="cuda", index=0, name="simulated", total_bytes=int(24 * GIB),
                          free_bytes=int(free_gib * GIB), driver_free_bytes=int(free_gib * GIB),
                          process_used_bytes=int(held_gib * GIB))


def test_budget_is_min_of_free_and_limit():
    assert gpu.with_limit(cuda_device(20), 8 * GIB).budget_bytes == 8 * GIB
    assert gpu.with_limit(cuda_device(5, held_gib=1), 8 * GIB).budget_bytes == 6 * GIB
    assert gpu.with_limit(cuda_device(20), None).budget_bytes == 20 * GIB


def test_limit_from_environment():
    assert gpu.vram_limit_bytes({"I2V_VRAM_LIMIT_GIB": "6"}) == 6 * GIB
    assert gpu.vram_limit_bytes({}) is None
    with pytest.raises(ValueError, match="I2V_VRAM_LIMIT_GIB"):
        gpu.vram_limit_bytes({"I2V_VRAM_LIMIT_GIB": "-2"})


def test_fraction_enforces_the_limit():
    assert gpu.memory_fraction(6 * GIB, 24 * GIB) == 0.25
    assert gpu.memory_fraction(48 * GIB, 24 * GIB) == 1.0


def test_allocator_config_set_unless_the_user_chose_one():
    environ = {}
    gpu.prepare_cuda_environment(environ)
    assert environ["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    mine = {"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128"}
    gpu.prepare_cuda_environment(mine)
    assert mine["PYTORCH_CUDA_ALLOC_CONF"] == "max_split_size_mb:128"


def test_flag_is_parsed_and_checked(capsys):
    args = build_parser().parse_args(["generate", "--image", "x.png", "--prompt", "p", "--vram-limit", "7.5"])
    assert args.vram_limit == 7.5
    for bad in ("0", "-1", "nan", "lots"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--vram-limit", bad])
    assert "vram-limit" in capsys.readouterr().err


def test_the_advisor_plans_for_the_limit(monkeypatch):
    from i2v.advisor import Advisor

    monkeypatch.setenv("I2V_VRAM_LIMIT_GIB", "6")
    monkeypatch.setattr(gpu, "probe_device_without_torch", lambda *a, **k: cuda_device(40))
    monkeypatch.setattr(gpu, "host_available_bytes", lambda: 32 * GIB)     # a fixed simulated machine
    advisor = Advisor()
    assert advisor.device().budget_bytes == 6 * GIB
    estimate = advisor.estimate({"resolution": 512, "num_frames": 16})
    assert estimate["available_gib"] == 6.0 and estimate["peak_gib"] <= 6.0


def test_simulated_device_for_tests():
    device = gpu.simulated_device({"I2V_SIMULATED_DEVICE": "cuda,24,20,64"})
    assert (device.kind, device.total_bytes, device.budget_bytes) == ("cuda", 24 * GIB, 20 * GIB)
    assert gpu.simulated_device({}) is None
    with pytest.raises(ValueError, match="I2V_SIMULATED_DEVICE"):
        gpu.simulated_device({"I2V_SIMULATED_DEVICE": "tpu,1,1"})
