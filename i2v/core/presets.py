"""Presets (configs/presets.toml, parsed by the caller), their status on a device, and the recommendation.

Status of a preset at its full settings, from the plan the ladder (i2v.core.fallback) picks for it: "fits"
(an exact plan with all weights on the GPU), "fits_with_offload" (an exact plan streaming or moving weights
from RAM), "fits_sequential" (only sequential offload: very slow), "fits_lossy" (only with fp8 weights or VAE
tiling), or "does_not_fit". The recommended preset is the highest one in the best class (see STATUS_RANK)
that finishes within RECOMMENDED_MAX_SECONDS (else the quickest of that class).
"""
from __future__ import annotations

from dataclasses import dataclass

from i2v.core.fallback import RANKING_TFLOPS, Ladder
from i2v.core.memory import MemoryModel, estimate_time
from i2v.core.request import GenerationRequest, build_request
from i2v.core.family import DEFAULT_RULES, FamilyRules
from i2v.core.offload import OFFLOADS
from i2v.core.settings import SETTINGS_BY_NAME
from i2v.core.tables import ConfigError, check_only_key, check_rows
from i2v.core.tiers import Tier
from i2v.core.units import GIB
from i2v.core.words import render

DEFAULT_IMAGE_SIZE = (1280, 720)   # without an input image, assume 16:9 landscape (the model's training shape)
STATUS_BY_OFFLOAD = {mode.name: mode.preset_status for mode in OFFLOADS}
STATUS_LABELS = {status: render(f"preset_{status}")     # English; the page says them in its language
                 for status in ("fits", "fits_with_offload", "fits_sequential", "fits_lossy", "does_not_fit")}
# Recommendation classes, best first: exact at a good speed (weights on the GPU or streamed), then sequential
# offload, then lossy plans. Within the best class present, the highest preset is recommended.
STATUS_RANK = (("fits", "fits_with_offload"), ("fits_sequential",), ("fits_lossy",))
# A recommended preset should finish in about this long (predicted, or measured once a run was seen).
RECOMMENDED_MAX_SECONDS = 30 * 60


def _limits(name: str) -> tuple:
    return _family_limits(SETTINGS_BY_NAME[name])


def _family_limits(s) -> tuple:
    if s.choices:
        return (s.kind, min(s.choices), max(s.choices))
    return ((int, float) if s.kind is float else s.kind, s.minimum, s.maximum)


PRESET_SPEC = {
    "id": (str, None, None),
    "name": (str, None, None),
    "label": (str, None, None),
    **{key: _limits(key) for key in ("resolution", "num_inference_steps", "guidance_scale", "fps")},
    "num_frames": _limits("num_frames"),
}


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    label: str
    resolution: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    fps: int

    def values(self) -> dict:
        """The user-facing values the preset sets (names of the settings table)."""
        return {"resolution": self.resolution, "num_frames": self.num_frames, "fps": self.fps,
                "num_inference_steps": self.num_inference_steps, "guidance_scale": float(self.guidance_scale)}


def parse_presets(data, rules: FamilyRules = DEFAULT_RULES) -> tuple[Preset, ...]:
    """A family's presets (I2VGen-XL's by default), each value within the family's rows and frame rule."""
    spec = {**PRESET_SPEC, **{key: _family_limits(rules.setting(key)) for key in
                              ("resolution", "num_inference_steps", "guidance_scale", "fps", "num_frames")}}
    rows = check_rows(check_only_key(data, "preset", "presets.toml"), spec, "presets.toml preset")
    choices = rules.setting("resolution").choices
    if choices:
        bad = [r["id"] for r in rows if r["resolution"] not in choices]
        if bad:
            raise ConfigError("config_resolution_choice", choices=choices, bad=bad)
    bad = [r["id"] for r in rows if rules.check_frames(r["num_frames"]) is not None]
    if bad:
        raise ConfigError("config_frames_rule", step=rules.frames_step, title=rules.title, bad=bad)
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ConfigError("config_duplicate_ids", ids=ids)
    return tuple(Preset(**{**row, "guidance_scale": float(row["guidance_scale"])}) for row in rows)


@dataclass(frozen=True)
class PresetStatus:
    preset: Preset
    status: str
    request: GenerationRequest        # with the memory knobs that make it fit (or the smallest tried)
    peak_bytes: int
    seconds_estimate: float | None     # whole run (steps x seconds per step); None when unknown

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / GIB


def preset_request(preset: Preset, image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
                   rules: FamilyRules = DEFAULT_RULES) -> GenerationRequest:
    return build_request(image_size, rules, **preset.values())


def preset_status(preset: Preset, model: MemoryModel, available_bytes: int, dtype: str = "fp16",
                  image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE, tier: Tier | None = None,
                  seconds_per_step: float | None = None, host_bytes: int | None = None,
                  rules: FamilyRules = DEFAULT_RULES) -> PresetStatus:
    """The preset at its own settings (within its family's rules) with the plan the ladder picks (the smallest
    when none fits)."""
    request = preset_request(preset, image_size, rules)
    tflops = tier.tflops if tier is not None else RANKING_TFLOPS
    ladder = Ladder(request, model, dtype, tflops)
    chosen = ladder.fastest_fitting(available_bytes, host_bytes)
    if chosen is None:
        plan, prediction = ladder.smallest(host_bytes) or ladder.smallest()
        status = "does_not_fit"
    else:
        plan, prediction = chosen
        status = "fits_lossy" if plan.lossy else STATUS_BY_OFFLOAD[plan.offload]
    planned = request.with_plan(plan)
    seconds = None
    if seconds_per_step is not None:
        seconds = seconds_per_step * preset.num_inference_steps
    elif tier is not None:
        timing = estimate_time(model, planned, tier.tflops, dtype)
        seconds = timing.total_s(preset.num_inference_steps) if timing else None
    return PresetStatus(preset, status, planned, prediction.peak_bytes, seconds)


def preset_statuses(presets, model, available_bytes, dtype="fp16", image_size=DEFAULT_IMAGE_SIZE, tier=None,
                    seconds_per_step=None, host_bytes=None, rules: FamilyRules = DEFAULT_RULES) -> list[PresetStatus]:
    return [preset_status(p, model, available_bytes, dtype, image_size, tier, seconds_per_step, host_bytes, rules)
            for p in presets]


def recommend_preset(presets, model: MemoryModel, available_bytes: int, dtype: str = "fp16",
                     image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE, tier: Tier | None = None,
                     seconds_per_step: float | None = None,
                     host_bytes: int | None = None,
                     rules: FamilyRules = DEFAULT_RULES) -> tuple[PresetStatus | None, list[PresetStatus]]:
    """(the recommended preset's status or None when none fits, every preset's status in file order)."""
    statuses = preset_statuses(presets, model, available_bytes, dtype, image_size, tier, seconds_per_step,
                               host_bytes, rules)
    best = recommended_index([s.status for s in statuses], [s.seconds_estimate for s in statuses])
    return (None if best is None else statuses[best]), statuses


def recommended_index(statuses: list[str], seconds: list[float | None] | None = None) -> int | None:
    """Which preset to recommend, by position: the highest one in the best class present (STATUS_RANK) that
    finishes within RECOMMENDED_MAX_SECONDS when times are known; if none does, the quickest of that class (a
    CPU is not sent on a two-day job)."""
    for group in STATUS_RANK:
        fitting = [i for i, status in enumerate(statuses) if status in group]
        if not fitting:
            continue
        timed = [i for i in fitting if seconds and seconds[i] is not None]
        if not timed:
            return fitting[-1]
        quick = [i for i in timed if seconds[i] <= RECOMMENDED_MAX_SECONDS]
        return quick[-1] if quick else min(timed, key=lambda i: seconds[i])
    return None


def status_from_estimate(estimate: dict) -> str:
    """A preset's status from the live estimate of its own settings (i2v.advisor.Advisor.estimate): the page's
    preset labels and its estimate panel read one computation, so they cannot disagree."""
    plan = estimate.get("plan")
    if estimate.get("error") or not estimate.get("fits") or not plan:
        return "does_not_fit"
    if plan.get("weights_dtype") == "fp8" or plan.get("vae_tiling"):
        return "fits_lossy"
    return STATUS_BY_OFFLOAD.get(plan.get("offload"), "fits")
