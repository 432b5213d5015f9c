"""Fit a request to a device: (request', [Adjustment]) — the plan chosen, the user's settings kept if at all
possible, and never a silent change.

1. Steps: capped only by a time budget the user set (and the settings table's range, checked earlier).
2. The plan: the fastest in the ladder (i2v.core.fallback) that fits the device budget and the host RAM —
   exact plans first; a lossy one (fp8 weights, VAE tiling) only when no exact plan fits, and then listed.
3. Only when no plan fits at all: the most frames that fit (down to a floor), then a lower resolution, each
   listed. A request that already fits keeps its settings; clamping a clamped request changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from i2v.core.family import DEFAULT_RULES, FamilyRules
from i2v.core.fallback import (
    RANKING_TFLOPS,
    Ladder,
    fallback_min_frames,
    min_frames,
    resolutions,
    short_side,
    with_resolution,
)
from i2v.core.memory import MemoryModel, Prediction
from i2v.core.request import GenerationRequest
from i2v.core.units import format_bytes
from i2v.core.errors import I2VError

SETTINGS_FIELDS = ("num_frames", "resolution", "width", "height")
LOSSY_REASON = "no exact plan fits: this one changes the pixels slightly"


@dataclass(frozen=True)
class Adjustment:
    field: str
    asked: Any
    got: Any
    reason: str                 # English detail for logs and sidecars
    reason_key: str = "fit"     # why, as a message id for the page: fit | lossy | time_budget (i2v.i18n reason_*)

    def __str__(self) -> str:
        return f"{self.field}: {self.asked} -> {self.got} ({self.reason})"


class DoesNotFit(I2VError, ValueError):
    """Even the smallest configuration is predicted not to fit; the message gives the figures."""


@dataclass(frozen=True)
class Fit:
    """What the clamp decided: the request to run (plan included), its prediction, and every change."""
    request: GenerationRequest
    prediction: Prediction
    adjustments: tuple[Adjustment, ...]


def _largest_fitting_frames(request: GenerationRequest, fits, low: int,
                            rules: FamilyRules = DEFAULT_RULES) -> GenerationRequest | None:
    """The request with the most frames in [low, its frames] that fits (the prediction grows with frames),
    searched over the counts the family allows (step x k + 1 for Wan)."""
    step = max(1, rules.frames_step)
    offset = 1 if step > 1 else 0

    def frames_at(k: int) -> int:
        return k * step + offset

    low_k = (min(low, request.num_frames) - offset + step - 1) // step
    high_k = (request.num_frames - offset) // step
    if low_k > high_k or not fits(request.replace(num_frames=frames_at(low_k))):
        return None
    while low_k < high_k:
        middle = (low_k + high_k + 1) // 2
        if fits(request.replace(num_frames=frames_at(middle))):
            low_k = middle
        else:
            high_k = middle - 1
    return request.replace(num_frames=frames_at(low_k))


def fit(request: GenerationRequest, available_bytes: int, model: MemoryModel, dtype: str = "fp16",
        tflops: float | None = None, seconds_per_step: float | None = None, time_budget_s: float | None = None,
        reserve_bytes: int | None = None, host_bytes: int | None = None,
        forced: Mapping[str, Any] | None = None, device_kind: str = "cuda", rules: FamilyRules = DEFAULT_RULES,
        carry: bool = False) -> Fit:
    """The request fitted to available_bytes (free + what this process already holds) and host_bytes of RAM,
    with forced plan parts kept; settings change within the family's rules. Raises DoesNotFit when nothing
    fits. carry: the fitted request carries the ranking (i2v.core.plans.Ranking) its worker falls back along
    after an OOM, so the plan is decided here only (a job's fit; not the live estimate)."""
    adjustments: list[Adjustment] = []
    if seconds_per_step and time_budget_s:
        budget_steps = max(1, int(time_budget_s // seconds_per_step))
        if request.num_inference_steps > budget_steps:
            adjustments.append(Adjustment("num_inference_steps", request.num_inference_steps, budget_steps,
                                          f"time budget {time_budget_s:.0f} s at {seconds_per_step:.1f} s/step",
                                          "time_budget"))
            request = request.replace(num_inference_steps=budget_steps)
    rank_tflops = tflops or RANKING_TFLOPS

    def ladder(candidate: GenerationRequest, smallest_only: bool = False) -> Ladder:
        return Ladder(candidate, model, dtype, rank_tflops, forced, reserve_bytes, device_kind, smallest_only)

    decided = ladder(request)
    chosen = decided.fastest_fitting(available_bytes, host_bytes)
    sized = request
    if chosen is None:
        def fits(candidate: GenerationRequest) -> bool:
            smallest = ladder(candidate, smallest_only=True).smallest(host_bytes)
            return smallest is not None and smallest[1].peak_bytes <= available_bytes

        sizes = resolutions(rules)
        for sized in [request] + [with_resolution(request, r, rules) for r in reversed(sizes)
                                  if r < short_side(request)]:
            found = _largest_fitting_frames(sized, fits, fallback_min_frames(rules), rules)
            if found is None and sized.resolution == sizes[0]:
                found = _largest_fitting_frames(sized, fits, min_frames(rules), rules)
            if found is not None:
                sized, decided = found, ladder(found)
                chosen = decided.fastest_fitting(available_bytes, host_bytes)
                break
    if chosen is None:
        lowest, fewest = resolutions(rules)[0], min_frames(rules)
        smallest = ladder(with_resolution(request.replace(num_frames=fewest), lowest, rules), True).smallest()
        need = format_bytes(smallest[1].peak_bytes) if smallest else "more"
        raise DoesNotFit("does_not_fit", resolution=lowest, frames=fewest, need=need,
                         available=format_bytes(available_bytes))
    plan, prediction = chosen
    fitted = sized.with_plan(plan).with_ranking(decided.ranking(rules) if carry else None)
    if sized is not request:
        reason = (f"no plan fits {request.width}x{request.height}x{request.num_frames} in "
                  f"{format_bytes(available_bytes)}; now {format_bytes(prediction.peak_bytes)}")
        adjustments += changes(request, fitted, SETTINGS_FIELDS, reason)
    asked = request.plan
    adjustments += [Adjustment(key, getattr(asked, key), getattr(plan, key), LOSSY_REASON, "lossy")
                    for key in plan.lossy_parts if getattr(asked, key) != getattr(plan, key)]
    return Fit(fitted, prediction, tuple(adjustments))


def clamp(request: GenerationRequest, available_bytes: int, model: MemoryModel, dtype: str = "fp16",
          **options: Any) -> tuple[GenerationRequest, list[Adjustment]]:
    """fit() as (request', [Adjustment]): the form the service and the UI use."""
    result = fit(request, available_bytes, model, dtype, **options)
    return result.request, list(result.adjustments)


def changes(before: GenerationRequest, after: GenerationRequest, names, reason: str) -> list[Adjustment]:
    return [Adjustment(name, getattr(before, name), getattr(after, name), reason)
            for name in names if getattr(before, name) != getattr(after, name)]

