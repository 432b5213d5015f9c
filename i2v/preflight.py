"""The GPU preflight of start_app.sh: does the smallest preset fit the free GPU memory (presets and the memory
model, no torch: NVML), and how much memory the app's processes hold. No-ops without an NVIDIA GPU. Split from
i2v.control, which decides what to do about a problem (refuse, or start anyway with --force)."""
from __future__ import annotations

import time

from i2v.core.units import MIB
from i2v.core.words import render

SETTLE_TRIES = 5           # memory of a just-stopped instance can take a moment to show as free
SETTLE_WAIT_S = 1.0


def gpu_free_bytes() -> int | None:
    from i2v import gpu

    if gpu.nvml_gpu_count() == 0:
        return None
    device = gpu.probe_device_without_torch(0)
    return device.free_bytes if device.kind == "cuda" else None


def smallest_fit_problem(free_bytes: int, lang: str = "en") -> str | None:
    """None when some preset fits free_bytes with some plan; else what the smallest one needs."""
    from i2v.configs import load_memory_model, load_presets
    from i2v.core.memory import for_device
    from i2v.core.presets import recommend_preset
    from i2v.core.units import GIB
    from i2v.gpu import host_available_bytes

    presets = load_presets()
    model = for_device(load_memory_model(), "cuda")
    chosen, statuses = recommend_preset(presets, model, free_bytes, host_bytes=host_available_bytes())
    if chosen is not None:
        return None
    smallest = min(statuses, key=lambda s: s.peak_gib)
    return render("control_gpu_too_small", lang, free_gib=f"{free_bytes / GIB:.1f}", preset=smallest.preset.label,
                  need_gib=f"{smallest.peak_gib:.1f}")



def gpu_problem(lang: str = "en") -> str | None:
    """None when there is no NVIDIA GPU or some preset fits its free memory (retried a few times while a
    just-stopped instance's memory is being released); else what the smallest preset needs."""
    free = gpu_free_bytes()
    if free is None:
        return None
    problem = None
    for _ in range(SETTLE_TRIES):
        problem = smallest_fit_problem(free, lang)
        if problem is None:
            return None
        time.sleep(SETTLE_WAIT_S)
        free = gpu_free_bytes() or 0
    return problem


def gpu_mib_held(pids) -> int | None:
    from i2v import gpu

    held = gpu.gpu_bytes_by_pid(pids)
    return None if held is None else sum(held.values()) // MIB

