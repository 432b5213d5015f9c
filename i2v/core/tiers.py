"""Device tiers (configs/tiers.toml, parsed by the caller): the card class and its throughput.

Tiers name the class of a device (by kind and total memory) and its nominal fp16 (GPU) / fp32 (CPU) TFLOP/s
for time estimates until a run was measured. They limit nothing: resolution and frames are capped by memory
alone (the clamp), steps only by the settings table and a time budget the user sets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from i2v.core.tables import ConfigError, check_only_key, check_rows
from i2v.core.units import GIB

DEVICE_KINDS = ("cuda", "cpu")

TIER_SPEC = {
    "name": (str, None, None),
    "label": (str, None, None),
    "device": (str, None, None),
    "min_total_gib": ((int, float), 0, None),
    "tflops": ((int, float), 0.001, None),
}


@dataclass(frozen=True)
class Tier:
    name: str
    label: str
    device: str
    min_total_gib: float
    tflops: float


def parse_tiers(data: Mapping[str, Any]) -> tuple[Tier, ...]:
    rows = check_rows(check_only_key(data, "tier", "tiers.toml"), TIER_SPEC, "tiers.toml tier")
    bad = [row["name"] for row in rows if row["device"] not in DEVICE_KINDS]
    if bad:
        raise ConfigError("config_tier_device", choices=DEVICE_KINDS, bad=bad)
    names = [row["name"] for row in rows]
    if len(set(names)) != len(names):
        raise ConfigError("config_tier_duplicates", names=names)
    return tuple(Tier(**row) for row in rows)


def select_tier(tiers: tuple[Tier, ...], device_kind: str, total_bytes: int) -> Tier:
    """The tier of this device kind with the highest min_total_gib not above the device's total memory."""
    matching = [t for t in tiers if t.device == device_kind and t.min_total_gib * GIB <= total_bytes]
    if not matching:
        raise ConfigError("config_no_tier", device=device_kind, total_gib=f"{total_bytes / GIB:.1f}")
    return max(matching, key=lambda t: t.min_total_gib)
