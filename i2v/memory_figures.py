"""Plain GiB figures for the page and the API from a device snapshot (i2v.gpu), with the warning when PyTorch
holds most of the card reserved."""
from __future__ import annotations

from i2v.core import words
from i2v.core.settings import RESERVED_WARNING_SHARE
from i2v.core.units import GIB


def memory_figures(snapshot: dict) -> dict:
    """Plain GiB figures from a DeviceInfo dict, with the reserved warning over RESERVED_WARNING_SHARE."""
    total = snapshot.get("total_bytes") or 0
    reserved = snapshot.get("torch_reserved_bytes") or 0
    figures = {
        "device": snapshot.get("kind"), "name": snapshot.get("name"),
        "total_gib": round(total / GIB, 2),
        "free_gib": round((snapshot.get("free_bytes") or 0) / GIB, 2),
        "used_gib": round((total - (snapshot.get("driver_free_bytes") or 0)) / GIB, 2),
        "allocated_gib": round((snapshot.get("torch_allocated_bytes") or 0) / GIB, 2),
        "reserved_gib": round(reserved / GIB, 2),
        "process_gib": round((snapshot.get("process_used_bytes") or 0) / GIB, 2),
    }
    if total and reserved > RESERVED_WARNING_SHARE * total:
        figures["warning"] = words.render("reserved_warning", "en", reserved=f"{reserved / GIB:.1f} GiB",
                                          total=f"{total / GIB:.1f} GiB", share=f"{RESERVED_WARNING_SHARE:.0%}")
    return figures
