"""The one ladder: which plan runs a request, and what is next smaller — used by the clamp, the presets and
the OOM guard alike.

Plans are ranked fastest first by the memory model's time estimate, every exact plan before any lossy one
(fp8 weights, VAE tiling), ties broken by the lower predicted peak. The *next smaller* plan is the first one
in that order whose predicted peak is strictly lower than the current one. Only when no plan fits do the
user's settings change: fewer frames (to a floor), then a lower resolution, each change reported.
"""
from __future__ import annotations

from typing import Any, Mapping

from i2v.core.family import DEFAULT_RULES, FamilyRules
from i2v.core.memory import (
    MemoryModel,
    Prediction,
    chunk_budgets,
    estimate_time,
    fp8_available,
    plan_parts_apply,
    predict,
)
from i2v.core.phases import DECODE
from i2v.core.plans import Notch, Plan, RankedPlan, Ranking, candidate_plans, smallest_plans
from i2v.core.request import GenerationRequest, round_to_multiple
from i2v.core.settings import OFFLOAD_MODES, SETTINGS_BY_NAME

RESOLUTIONS = tuple(sorted(SETTINGS_BY_NAME["resolution"].choices))     # I2VGen-XL's; a family's: resolutions()
MIN_FRAMES = int(SETTINGS_BY_NAME["num_frames"].minimum)
FALLBACK_MIN_FRAMES = 8     # frames are not cut below this before a lower resolution has been tried
FRAMES_STEP = 8             # frames go down in multiples of this (32 -> 24 -> 16 -> 8), then halve
RANKING_TFLOPS = 100.0      # throughput assumed for ranking plans when the caller knows none
# After a decode-time OOM the latents are kept: only these plan parts may change (they act on the decode).
DECODE_SAFE_KEYS = ("offload", "decode_chunk", "vae_tiling")


class Ladder:
    """The ranked plans for one request's settings on one device (built once, queried many times)."""

    def __init__(self, request: GenerationRequest, model: MemoryModel, dtype: str = "fp16",
                 tflops: float = RANKING_TFLOPS, forced: Mapping[str, Any] | None = None,
                 reserve_bytes: int | None = None, device_kind: str = "cuda", smallest_only: bool = False):
        """smallest_only: rank only the plans that can hold the lowest peak (a quick 'can it fit at all')."""
        self.request, self.model, self.dtype = request, model, dtype
        self.reserve_bytes, self.device_kind = reserve_bytes, device_kind
        self.tflops, self.forced = tflops, dict(forced or {})
        offloads = OFFLOAD_MODES if model.offload_applies else ("none",)
        budgets, fp8 = chunk_budgets(model, dtype), fp8_available(model, dtype)
        parts = tuple(part for part, applies in plan_parts_apply(model).items()   # the family's; on a CPU
                      if applies and (model.offload_applies or part != "text_encoder_cpu"))  # all runs there
        if smallest_only:
            plans = smallest_plans(budgets, forced, fp8, offloads, parts)
        else:
            plans = candidate_plans(budgets, forced, fp8, request.decode_chunk_size, offloads, parts)
        scored = []
        for plan in plans:
            candidate = request.with_plan(plan)
            prediction = self.predict(candidate)
            timing = None if smallest_only else estimate_time(model, candidate, tflops, dtype)
            seconds = timing.total_s(request.num_inference_steps) if timing else 0.0
            scored.append((plan.lossy, seconds, prediction.peak_bytes, prediction.host_bytes, plan, prediction))
        scored.sort(key=lambda row: row[:4])
        self.ranked: list[tuple[Plan, Prediction, float]] = [(row[4], row[5], row[1]) for row in scored]

    def predict(self, request: GenerationRequest) -> Prediction:
        return predict(self.model, request, dtype=self.dtype, reserve_bytes=self.reserve_bytes,
                       device_kind=self.device_kind)

    def fastest_fitting(self, available_bytes: int, host_bytes: int | None = None,
                        exact_only: bool = False) -> tuple[Plan, Prediction] | None:
        """The first plan in ladder order that fits the device budget (and the host RAM, when given)."""
        for plan, prediction, _ in self.ranked:
            if exact_only and plan.lossy:
                break
            if prediction.peak_bytes <= available_bytes and (host_bytes is None or prediction.host_bytes <= host_bytes):
                return plan, prediction
        return None

    def smallest(self, host_bytes: int | None = None) -> tuple[Plan, Prediction] | None:
        """The plan with the lowest predicted peak (that fits the host RAM, when given)."""
        fitting = [(p, pr) for p, pr, _ in self.ranked if host_bytes is None or pr.host_bytes <= host_bytes]
        return min(fitting, key=lambda row: (row[1].peak_bytes, row[0].lossy)) if fitting else None

    def next_smaller(self, current: Plan, phase: str | None = None) -> Plan | None:
        """The fastest plan predicted strictly below the current one (below in that phase, for a decode OOM,
        changing only what acts on the decode); None when there is none."""
        def bytes_of(prediction: Prediction) -> int:
            if phase == DECODE:
                return next(p.total_bytes for p in prediction.phases if p.phase == DECODE)
            return prediction.peak_bytes

        now = bytes_of(self.predict(self.request.with_plan(current)))
        for plan, prediction, _ in self.ranked:
            if phase == DECODE and any(getattr(plan, k) != getattr(current, k)
                                              for k in vars(current) if k not in DECODE_SAFE_KEYS):
                continue
            if bytes_of(prediction) < now:
                return plan
        return None

    def ranking(self, rules: FamilyRules = DEFAULT_RULES) -> Ranking:
        """This decision as data to carry with the request: the ranked plans with their peaks, then each
        settings notch below (forced parts kept) with its smallest plan — all the worker's fallback needs."""
        notches = []
        step = settings_notch(self.request, rules)
        while step is not None:
            smallest = Ladder(step[0], self.model, self.dtype, self.tflops, self.forced, self.reserve_bytes,
                              self.device_kind, smallest_only=True).smallest()
            if smallest is not None:
                changed = tuple((name, getattr(step[0], name)) for name in NOTCH_FIELDS
                                if getattr(step[0], name) != getattr(self.request, name))
                notches.append(Notch(changed, _ranked(*smallest)))
            step = settings_notch(step[0], rules)
        return Ranking(tuple(_ranked(plan, prediction) for plan, prediction, _ in self.ranked), tuple(notches))


NOTCH_FIELDS = ("num_frames", "width", "height", "resolution")    # what settings_notch may change


def _ranked(plan: Plan, prediction: Prediction) -> RankedPlan:
    decode = next((p.total_bytes for p in prediction.phases if p.phase == DECODE), prediction.peak_bytes)
    return RankedPlan(plan, prediction.peak_bytes, decode)


def ranked_request(request: GenerationRequest, model: MemoryModel, dtype: str = "fp16",
                   rules: FamilyRules = DEFAULT_RULES, **ladder_options: Any) -> GenerationRequest:
    """The request with its ranking attached, for a request that did not come through the clamp (a caller
    running the runner directly): decided once, where the request is built. Its own plan is always in it."""
    ladder = Ladder(request, model, dtype, **ladder_options)
    ranking = ladder.ranking(rules)
    if ranking.entry(request.plan) is None:      # a plan outside the candidates (forced by code): its peaks
        ranking = Ranking(ranking.plans + (_ranked(request.plan, ladder.predict(request)),), ranking.notches)
    return request.with_ranking(ranking)


# ---------------------------------------------------------------- the carried decision, after an OOM
def carried_next(request: GenerationRequest, phase: str | None = None) -> tuple[GenerationRequest, str] | None:
    """(request', description) one step down the carried ranking with a strictly lower predicted peak (in the
    decode, changing only what acts on it, after a decode OOM), else the first settings notch below; None
    at the bottom or when the request carries no ranking (or its plan is not in it). No memory model."""
    ranking = request.ranking
    current = ranking.entry(request.plan) if ranking is not None else None
    if current is None:
        return None
    now = current.decode_bytes if phase == DECODE else current.peak_bytes
    for ranked in ranking.plans:
        if phase == DECODE:
            if any(getattr(ranked.plan, k) != getattr(current.plan, k)
                   for k in vars(current.plan) if k not in DECODE_SAFE_KEYS):
                continue
            if ranked.decode_bytes < now:
                return request.with_plan(ranked.plan), describe_plan_change(request.plan, ranked.plan)
        elif ranked.peak_bytes < now:
            return request.with_plan(ranked.plan), describe_plan_change(request.plan, ranked.plan)
    if phase == DECODE:
        return None
    for index, notch in enumerate(ranking.notches):
        if notch.ranked.peak_bytes < now:
            return _at_notch(request, ranking, index), describe_settings_change(request, dict(notch.changes))
    return None


def carried_suggestion(request: GenerationRequest, free_bytes: int) -> GenerationRequest | None:
    """After a failed run: the fastest configuration of the carried ranking below what failed (the prediction
    evidently was optimistic) that is predicted to fit free_bytes; None when none is."""
    ranking = request.ranking
    current = ranking.entry(request.plan) if ranking is not None else None
    if current is None:
        return None
    for ranked in ranking.plans:
        if ranked.peak_bytes < current.peak_bytes and ranked.peak_bytes <= free_bytes:
            return request.with_plan(ranked.plan)
    for index, notch in enumerate(ranking.notches):
        if notch.ranked.peak_bytes < current.peak_bytes and notch.ranked.peak_bytes <= free_bytes:
            return _at_notch(request, ranking, index)
    return None


def _at_notch(request: GenerationRequest, ranking: Ranking, index: int) -> GenerationRequest:
    """The request at a carried notch, carrying the notches below it (its own plans: the smallest one)."""
    notch = ranking.notches[index]
    moved = request.replace(plan=notch.ranked.plan, **dict(notch.changes))
    return moved.with_ranking(Ranking((notch.ranked,), ranking.notches[index + 1:]))


def describe_settings_change(request: GenerationRequest, changes: dict) -> str:
    """As settings_notch words a step: fewer frames, a lower resolution (both when a move does both)."""
    said = []
    if changes.get("num_frames", request.num_frames) != request.num_frames:
        said.append(f"fewer frames: {request.num_frames} -> {changes['num_frames']}")
    width, height = changes.get("width", request.width), changes.get("height", request.height)
    if (width, height) != (request.width, request.height):
        said.append(f"lower resolution: {request.width}x{request.height} -> {width}x{height}")
    return "; ".join(said)


# ---------------------------------------------------------------- the user's settings, last resort
def short_side(request: GenerationRequest) -> int:
    return min(request.width, request.height)


def resolutions(rules: FamilyRules = DEFAULT_RULES) -> tuple[int, ...]:
    """The family's short sides, smallest first."""
    return tuple(sorted(rules.setting("resolution").choices))


def min_frames(rules: FamilyRules = DEFAULT_RULES) -> int:
    return int(rules.setting("num_frames").minimum)


def with_resolution(request: GenerationRequest, resolution: int, rules: FamilyRules = DEFAULT_RULES) -> GenerationRequest:
    """The request at a new short side, keeping its aspect (long side rounded to the family's size multiple)."""
    long_side = round_to_multiple(max(request.width, request.height) * resolution / short_side(request),
                                  rules.size_multiple)
    width, height = (long_side, resolution) if request.width >= request.height else (resolution, long_side)
    return request.replace(width=width, height=height, resolution=resolution)


def fewer_frames(frames: int, floor: int, rules: FamilyRules = DEFAULT_RULES) -> int | None:
    """The next lower frame count (multiples of FRAMES_STEP, then halving; a family's frame rule kept), or None
    at the floor."""
    lower = ((frames - 1) // FRAMES_STEP) * FRAMES_STEP if frames > FRAMES_STEP else frames // 2
    lower = rules.nearest_frames(max(lower, floor))
    return lower if lower < frames else None


def fallback_min_frames(rules: FamilyRules = DEFAULT_RULES) -> int:
    return rules.nearest_frames(FALLBACK_MIN_FRAMES)


def lower_resolution(request: GenerationRequest, rules: FamilyRules = DEFAULT_RULES) -> int | None:
    below = [r for r in resolutions(rules) if r < short_side(request)]
    return below[-1] if below else None


def settings_notch(request: GenerationRequest, rules: FamilyRules = DEFAULT_RULES) -> tuple[GenerationRequest, str] | None:
    """One step down in the user's settings: frames to FALLBACK_MIN_FRAMES first, then resolution, then
    frames to the minimum (within the family's rules)."""
    frames = fewer_frames(request.num_frames, min(fallback_min_frames(rules), request.num_frames), rules)
    if frames is not None:
        return request.replace(num_frames=frames), f"fewer frames: {request.num_frames} -> {frames}"
    resolution = lower_resolution(request, rules)
    if resolution is not None:
        smaller = with_resolution(request, resolution, rules)
        return smaller, f"lower resolution: {request.width}x{request.height} -> {smaller.width}x{smaller.height}"
    frames = fewer_frames(request.num_frames, min_frames(rules), rules)
    if frames is not None:
        return request.replace(num_frames=frames), f"fewer frames: {request.num_frames} -> {frames}"
    return None


def describe_plan_change(before: Plan, after: Plan) -> str:
    changed = [f"{key} {getattr(before, key)} -> {getattr(after, key)}" for key in vars(before)
               if getattr(before, key) != getattr(after, key)]
    return "plan: " + ", ".join(changed)


# ---------------------------------------------------------------- the OOM guard's questions
def next_fallback(request: GenerationRequest, model: MemoryModel, dtype: str = "fp16", phase: str | None = None,
                  tflops: float = RANKING_TFLOPS, rules: FamilyRules = DEFAULT_RULES) -> tuple[GenerationRequest, str] | None:
    """(request', description) one step down with a strictly lower predicted peak: the next smaller plan,
    else (not after a decode OOM, whose latents are kept) the user's settings. None at the bottom."""
    ladder = Ladder(request, model, dtype, tflops)
    plan = ladder.next_smaller(request.plan, phase)
    if plan is not None:
        return request.with_plan(plan), describe_plan_change(request.plan, plan)
    if phase == DECODE:
        return None
    current = ladder.predict(request).peak_bytes
    step = settings_notch(request, rules)
    while step is not None:
        smaller = Ladder(step[0], model, dtype, tflops, smallest_only=True).smallest()
        candidate = step[0].with_plan(smaller[0]) if smaller else step[0]
        if predict(model, candidate, dtype=dtype).peak_bytes < current:
            return candidate, step[1]
        step = settings_notch(step[0], rules)
    return None


def suggest_config(request: GenerationRequest, free_bytes: int, model: MemoryModel, dtype: str = "fp16",
                   max_steps: int = 64, rules: FamilyRules = DEFAULT_RULES) -> tuple[GenerationRequest, list[str]] | None:
    """Walk down until the prediction fits free_bytes: (request', [descriptions]) or None if nothing fits.

    Used after an OOM with the freshly read free memory; an unchanged request means it already fits.
    """
    steps: list[str] = []
    for _ in range(max_steps):
        if predict(model, request, dtype=dtype).peak_bytes <= free_bytes:
            return request, steps
        fitting = Ladder(request, model, dtype).fastest_fitting(free_bytes)
        if fitting is not None:
            plan = fitting[0]
            steps.append(describe_plan_change(request.plan, plan))
            return request.with_plan(plan), steps
        step = next_fallback(request, model, dtype, rules=rules)
        if step is None:
            return None
        request, description = step
        steps.append(description)
    return None

