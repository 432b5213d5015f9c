"""Fit a request to a device: (request', [Adjustment]) — never a silent change.

Memory: the least offload that fits before cutting quality, in the fallback ladder's order (decode chunk and
VAE tiling, model offload, forward chunking), then the most frames that fit, then a lower resolution (with
the most frames that fit there), and sequential offload last. Steps do not change memory: they are capped by
the tier's maximum and by a time budget. A request that already fits is returned unchanged; clamping a
clamped request changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from i2v.core.fallback import (
    FALLBACK_MIN_FRAMES,
    MIN_FRAMES,
    RESOLUTIONS,
    decode_notch,
    forward_chunking_notch,
    model_offload_notch,
    short_side,
    with_resolution,
)
from i2v.core.memory import MemoryModel, predict
from i2v.core.request import GenerationRequest
from i2v.core.tiers import Tier
from i2v.core.units import format_bytes

KNOB_NOTCHES = (decode_notch, model_offload_notch, forward_chunking_notch)
MEMORY_FIELDS = ("decode_chunk_size", "vae_tiling", "offload", "forward_chunking", "num_frames",
                 "resolution", "width", "height")


@dataclass(frozen=True)
class Adjustment:
    field: str
    asked: Any
    got: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.asked} -> {self.got} ({self.reason})"


class DoesNotFit(ValueError):
    """Even the smallest configuration is predicted not to fit; the message gives the figures."""


def _largest_fitting_frames(request: GenerationRequest, fits, low: int) -> GenerationRequest | None:
    """The request with the most frames in [low, its frames] that fits (the prediction grows with frames)."""
    low = min(low, request.num_frames)
    if not fits(request.replace(num_frames=low)):
        return None
    high = request.num_frames
    while low < high:
        middle = (low + high + 1) // 2
        if fits(request.replace(num_frames=middle)):
            low = middle
        else:
            high = middle - 1
    return request.replace(num_frames=low)


def _fit_memory(request: GenerationRequest, fits, model: MemoryModel, dtype: str) -> GenerationRequest | None:
    if fits(request):
        return request
    knobs = request
    for notch in KNOB_NOTCHES:
        step = notch(knobs)
        if step is not None and predict(model, step[0], dtype=dtype).peak_bytes < predict(
                model, knobs, dtype=dtype).peak_bytes:
            knobs = step[0]
            if fits(knobs):
                return knobs
    for offload, floor in ((knobs.offload, FALLBACK_MIN_FRAMES), ("sequential", MIN_FRAMES)):
        base = knobs.replace(offload=offload)
        sizes = [base] + [with_resolution(base, r) for r in reversed(RESOLUTIONS) if r < short_side(base)]
        for sized in sizes:
            found = _largest_fitting_frames(sized, fits, floor)
            if found is not None:
                return found
    return None


def _cap(request: GenerationRequest, name: str, limit: int, reason: str, adjustments: list[Adjustment]):
    value = getattr(request, name)
    if value <= limit:
        return request
    adjustments.append(Adjustment(name, value, limit, reason))
    return request.replace(**{name: limit})


def clamp(request: GenerationRequest, available_bytes: int, model: MemoryModel, tier: Tier | None = None,
          dtype: str = "fp16", seconds_per_step: float | None = None, time_budget_s: float | None = None,
          reserve_bytes: int | None = None) -> tuple[GenerationRequest, list[Adjustment]]:
    """The request fitted to available_bytes (the whole budget of this process: free + what it already
    holds), with one Adjustment per changed field. Raises DoesNotFit when nothing on the ladder fits."""
    adjustments: list[Adjustment] = []
    if tier is not None:
        tier_reason = f"the {tier.label} tier allows at most"
        request = _cap(request, "num_inference_steps", tier.max_steps, f"{tier_reason} {tier.max_steps} steps",
                       adjustments)
        request = _cap(request, "num_frames", tier.max_frames, f"{tier_reason} {tier.max_frames} frames",
                       adjustments)
        if short_side(request) > tier.max_resolution:
            capped = with_resolution(request, max(r for r in RESOLUTIONS if r <= tier.max_resolution))
            adjustments += _changes(request, capped, ("resolution", "width", "height"),
                                    f"{tier_reason} {tier.max_resolution}p")
            request = capped
    if seconds_per_step and time_budget_s:
        budget_steps = max(1, int(time_budget_s // seconds_per_step))
        request = _cap(request, "num_inference_steps", budget_steps,
                       f"time budget {time_budget_s:.0f} s at {seconds_per_step:.1f} s/step", adjustments)

    def fits(candidate: GenerationRequest) -> bool:
        return predict(model, candidate, dtype=dtype, reserve_bytes=reserve_bytes).peak_bytes <= available_bytes

    fitted = _fit_memory(request, fits, model, dtype)
    if fitted is None:
        smallest = predict(model, with_resolution(request.replace(num_frames=MIN_FRAMES, offload="sequential"),
                                                  RESOLUTIONS[0]), dtype=dtype, reserve_bytes=reserve_bytes)
        raise DoesNotFit(f"even {RESOLUTIONS[0]}p, {MIN_FRAMES} frames with sequential offload is predicted to "
                         f"need {format_bytes(smallest.peak_bytes)}; only {format_bytes(available_bytes)} available")
    before = predict(model, request, dtype=dtype, reserve_bytes=reserve_bytes).peak_bytes
    after = predict(model, fitted, dtype=dtype, reserve_bytes=reserve_bytes).peak_bytes
    memory_reason = (f"predicted peak {format_bytes(before)} > {format_bytes(available_bytes)} available; "
                     f"now {format_bytes(after)}")
    return fitted, adjustments + _changes(request, fitted, MEMORY_FIELDS, memory_reason)


def _changes(before: GenerationRequest, after: GenerationRequest, names, reason: str) -> list[Adjustment]:
    return [Adjustment(name, getattr(before, name), getattr(after, name), reason)
            for name in names if getattr(before, name) != getattr(after, name)]
