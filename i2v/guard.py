"""The OOM guard's torch-side helpers: recognise an allocation failure, free what it left behind, read memory.

Cleanup runs *outside* the except block: the exception's traceback keeps the failed frames (and their
tensors) alive until it is dropped.
"""
from __future__ import annotations

import gc
import logging

from i2v.core.oom import is_oom

log = logging.getLogger(__name__)


def is_oom_exception(exc: BaseException) -> bool:
    return is_oom(type(exc).__name__, str(exc))


def read_memory() -> dict:
    """Device figures (GPU via torch + NVML in the worker, else RAM): free, budget, allocated, reserved."""
    from i2v import gpu

    return gpu.memory_snapshot()


def free_after_oom(loaded) -> dict:
    """gc + empty_cache + release offload hooks; returns the memory figures read afterwards."""
    from i2v import pipeline as pl

    pl.release_after_failure(loaded)
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - a broken context must not hide the original OOM
        log.exception("empty_cache after OOM failed")
    return read_memory()
