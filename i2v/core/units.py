"""Byte formatting and conversions."""
from __future__ import annotations

GIB = 1024**3
MIB = 1024**2


def to_gib(num_bytes: float) -> float:
    return num_bytes / GIB


def format_bytes(num_bytes: float | None) -> str:
    """'3.25 GiB' / '512.0 MiB'; 'n/a' for None."""
    if num_bytes is None:
        return "n/a"
    if abs(num_bytes) >= GIB:
        return f"{num_bytes / GIB:.2f} GiB"
    return f"{num_bytes / MIB:.1f} MiB"
