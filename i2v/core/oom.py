"""Recognising out-of-memory failures from their type and text (CUDA, cuBLAS, cuDNN, CPU allocator)."""
from __future__ import annotations

OOM_TYPE_NAMES = ("OutOfMemoryError", "MemoryError")
OOM_MESSAGE_MARKERS = (
    "out of memory",                       # CUDA caching allocator, HIP, generic
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "cudnn_status_not_enough_workspace",
    "cuda error: out of memory",
    "defaultcpuallocator: can't allocate memory",
    "failed to allocate memory",
    "not enough memory",
)


def is_oom(type_name: str, message: str) -> bool:
    """True when an exception (by class name and text) is an allocation failure."""
    if type_name in OOM_TYPE_NAMES:
        return True
    text = message.lower()
    return any(marker in text for marker in OOM_MESSAGE_MARKERS)
