"""The one place that asks the hardware: torch.cuda + NVML for the GPU, psutil for CPU RAM.

Nothing happens at import; torch and pynvml are imported inside the functions. Figures in bytes.
free_bytes follows the honest formula: driver free + memory torch has reserved but is not using.
budget_bytes is what a job of this process may hold in total (driver free + what this process already
holds), the figure to compare a prediction (weights + activations + context) against.
"""
from __future__ import annotations

import contextlib
import gc
from dataclasses import asdict, dataclass

from i2v.core.words import render


@dataclass
class DeviceInfo:
    kind: str                                  # "cuda" or "cpu"
    index: int
    name: str
    total_bytes: int
    free_bytes: int                            # driver free + torch reserved-but-inactive (CPU: RAM available)
    driver_free_bytes: int
    torch_allocated_bytes: int = 0
    torch_reserved_bytes: int = 0
    process_used_bytes: int | None = None      # NVML's figure for this process (context included); CPU: RSS
    capability: str | None = None
    limit_bytes: int | None = None             # the user's VRAM limit (--vram-limit), if any

    @property
    def budget_bytes(self) -> int:
        """Bytes this process may use for a job in total: driver free + what it already holds, and never more
        than the user's VRAM limit."""
        held = self.process_used_bytes if self.process_used_bytes is not None else self.torch_reserved_bytes
        if self.kind == "cpu":
            return self.free_bytes
        budget = self.driver_free_bytes + max(held, self.torch_reserved_bytes)
        return min(budget, self.limit_bytes) if self.limit_bytes else budget

    def as_dict(self) -> dict:
        return {**asdict(self), "budget_bytes": self.budget_bytes}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@contextlib.contextmanager
def _nvml():
    """pynvml, initialised for the block and shut down after; None without the library or a driver. NVML never
    creates a CUDA context, so the web server and the control script may use it."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no library, no driver, no permission: NVML simply has no answer
        yield None
        return
    try:
        yield pynvml
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def nvml_gpu_count() -> int:
    """Visible NVIDIA GPUs (0 without a driver)."""
    with _nvml() as nvml:
        if nvml is None:
            return 0
        with contextlib.suppress(Exception):
            return int(nvml.nvmlDeviceGetCount())
    return 0


def _pid_gpu_bytes(nvml, handle, pids) -> dict[int, int]:
    held: dict[int, int] = {}
    for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
        if proc.pid in pids and proc.usedGpuMemory:
            held[proc.pid] = held.get(proc.pid, 0) + int(proc.usedGpuMemory)
    return held


def gpu_bytes_by_pid(pids, index: int | None = None) -> dict[int, int] | None:
    """GPU memory each of these processes holds (NVML), on one device or summed over all; None when NVML cannot
    tell (no driver; containers may hide PIDs)."""
    pids = set(pids)
    with _nvml() as nvml:
        if nvml is None:
            return None
        try:
            indices = [index] if index is not None else range(nvml.nvmlDeviceGetCount())
            held: dict[int, int] = {}
            for i in indices:
                for pid, used in _pid_gpu_bytes(nvml, nvml.nvmlDeviceGetHandleByIndex(i), pids).items():
                    held[pid] = held.get(pid, 0) + used
            return held
        except Exception:  # noqa: BLE001 - containers often hide PIDs from NVML
            return None


def process_memory_bytes(pid: int) -> int:
    """GPU memory the process holds (NVML) if it holds any, else its resident RAM; 0 once it is gone."""
    used = (gpu_bytes_by_pid([pid]) or {}).get(pid)
    if used:
        return used
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except Exception:  # noqa: BLE001 - process already gone
        return 0


def _nvml_process_used(index: int) -> int | None:
    """This process's memory on the device according to NVML, or None when NVML cannot tell."""
    import os

    held = gpu_bytes_by_pid([os.getpid()], index)
    return None if held is None else held.get(os.getpid(), 0)


def _probe_cuda(index: int) -> DeviceInfo:
    import torch

    driver_free, total = torch.cuda.mem_get_info(index)
    stats = torch.cuda.memory_stats(index)
    reserved = int(stats.get("reserved_bytes.all.current", 0))
    active = int(stats.get("active_bytes.all.current", 0))
    props = torch.cuda.get_device_properties(index)
    return DeviceInfo(
        kind="cuda", index=index, name=props.name, total_bytes=int(total),
        free_bytes=int(driver_free) + max(0, reserved - active), driver_free_bytes=int(driver_free),
        torch_allocated_bytes=int(torch.cuda.memory_allocated(index)), torch_reserved_bytes=reserved,
        process_used_bytes=_nvml_process_used(index), capability=f"{props.major}.{props.minor}",
    )


def _probe_cpu() -> DeviceInfo:
    import platform

    import psutil

    memory = psutil.virtual_memory()
    return DeviceInfo(
        kind="cpu", index=0, name=platform.processor() or platform.machine() or "CPU",
        total_bytes=int(memory.total), free_bytes=int(memory.available), driver_free_bytes=int(memory.available),
        process_used_bytes=int(psutil.Process().memory_info().rss),
    )


def simulated_device(environ=None) -> DeviceInfo | None:
    """I2V_SIMULATED_DEVICE='KIND,TOTAL_GIB,FREE_GIB[,HOST_GIB]' (a testing aid): fixed figures instead of
    this machine's, so no test depends on its free memory or load."""
    import os

    from i2v.core import env
    from i2v.core.units import GIB

    raw = env.value("I2V_SIMULATED_DEVICE", os.environ if environ is None else environ).strip()
    if not raw:
        return None
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) not in (3, 4) or parts[0] not in ("cuda", "cpu"):
        raise ValueError(render("env_simulated_device", "en", value=repr(raw)))
    total, free = int(float(parts[1]) * GIB), int(float(parts[2]) * GIB)
    return DeviceInfo(kind=parts[0], index=0, name=f"simulated {parts[0]} ({parts[1]} GiB)", total_bytes=total,
                      free_bytes=free, driver_free_bytes=free, process_used_bytes=0)


def probe_device(index: int = 0) -> DeviceInfo:
    """The GPU at index when CUDA is available, else the CPU's RAM (or the simulated device of a test)."""
    simulated = simulated_device()
    if simulated is not None:
        return simulated
    return _probe_cuda(index) if cuda_available() else _probe_cpu()


def memory_snapshot(index: int = 0) -> dict:
    """Plain figures for logs and the UI (bytes), including the budget a job may use."""
    return probe_device(index).as_dict()


def clear_cache(index: int = 0) -> dict:
    """gc + torch.cuda.empty_cache(); free memory before and after (on CPU: RAM available)."""
    before = probe_device(index)
    gc.collect()
    if before.kind == "cuda":
        import torch

        torch.cuda.synchronize(index)
        torch.cuda.empty_cache()
    after = probe_device(index)
    return {"kind": before.kind, "free_before_bytes": before.free_bytes, "free_after_bytes": after.free_bytes,
            "driver_free_before_bytes": before.driver_free_bytes, "driver_free_after_bytes": after.driver_free_bytes,
            "reserved_before_bytes": before.torch_reserved_bytes, "reserved_after_bytes": after.torch_reserved_bytes}


def reset_peak(index: int = 0) -> None:
    import torch

    torch.cuda.reset_peak_memory_stats(index)


def peak_allocated(index: int = 0) -> int:
    import torch

    return int(torch.cuda.max_memory_allocated(index))


def probe_device_without_torch(index: int = 0, holder_pids: tuple[int, ...] = ()) -> DeviceInfo:
    """For the web server, which must never create a CUDA context: NVML for the GPU, psutil for RAM.

    process_used_bytes is what holder_pids (the workers) hold on that GPU, so budget_bytes is what a worker
    may use: driver free + what the workers already hold.
    """
    simulated = simulated_device()
    if simulated is not None:
        return simulated
    with _nvml() as nvml:
        if nvml is None or nvml.nvmlDeviceGetCount() <= index:
            return _probe_cpu()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        name = nvml.nvmlDeviceGetName(handle)
        try:
            held = sum(_pid_gpu_bytes(nvml, handle, set(holder_pids)).values())
        except Exception:  # noqa: BLE001 - containers may hide PIDs
            held = 0
        return DeviceInfo(kind="cuda", index=index, name=name.decode() if isinstance(name, bytes) else str(name),
                          total_bytes=int(info.total), free_bytes=int(info.free), driver_free_bytes=int(info.free),
                          process_used_bytes=held)


def host_available_bytes() -> int:
    """RAM available to a new allocation now (psutil), for plans that keep weights in host memory."""
    import os

    import psutil

    from i2v.core import env
    from i2v.core.units import GIB

    parts = env.value("I2V_SIMULATED_DEVICE", os.environ).split(",")
    if len(parts) == 4:
        return int(float(parts[3]) * GIB)

    return int(psutil.virtual_memory().available)


def vram_limit_bytes(environ=None) -> int | None:
    """The user's VRAM limit (I2V_VRAM_LIMIT_GIB, set by --vram-limit) in bytes, or None."""
    import os

    from i2v.core import env
    from i2v.core.units import GIB

    raw = env.value("I2V_VRAM_LIMIT_GIB", os.environ if environ is None else environ).strip()
    if not raw:
        return None
    limit = float(raw)
    if not limit > 0:
        raise ValueError(render("env_vram_limit", "en", value=repr(raw)))
    return int(limit * GIB)


def with_limit(device: DeviceInfo, limit_bytes: int | None) -> DeviceInfo:
    """The device with the user's VRAM limit applied to its budget (GPUs only)."""
    if limit_bytes and device.kind == "cuda":
        device.limit_bytes = limit_bytes
    return device


def memory_fraction(limit_bytes: int, total_bytes: int) -> float:
    """The fraction for torch.cuda.set_per_process_memory_fraction that enforces the limit (at most 1)."""
    return min(1.0, limit_bytes / total_bytes)


def prepare_cuda_environment(environ) -> None:
    """Before CUDA starts in the worker: expandable segments against fragmentation ("out of memory with
    GBs free"), unless the user configured the allocator themselves."""
    environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")


def enforce_vram_limit(limit_bytes: int | None, index: int = 0) -> float | None:
    """Make the caching allocator raise a real out-of-memory error past the limit; returns the fraction set."""
    if not limit_bytes or not cuda_available():
        return None
    import torch

    total = torch.cuda.get_device_properties(index).total_memory
    fraction = memory_fraction(limit_bytes, total)
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return fraction
