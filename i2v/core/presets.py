"""Presets (configs/presets.toml, parsed by the caller), their status on a device, and the recommendation.

Status of a preset at its full quality: "fits" (no offload), "fits_with_offload" (model CPU offload),
"fits_sequential" (sequential offload: fits, very slowly), "does_not_fit", or "over_tier" (beyond the device
tier's limits). Memory knobs that cost no quality (decode chunk, VAE tiling, forward chunking) are allowed.
The recommended preset is the highest one with the least offload.
"""
from __future__ import annotations

from dataclasses import dataclass

from i2v.core.memory import MemoryModel, estimate_seconds_per_step, predict
from i2v.core.request import GenerationRequest, build_request
from i2v.core.settings import OFFLOAD_MODES, SETTINGS_BY_NAME
from i2v.core.tables import ConfigError, check_only_key, check_rows
from i2v.core.tiers import Tier

DEFAULT_IMAGE_SIZE = (1280, 720)   # without an input image, assume 16:9 landscape (the model's training shape)
STATUS_BY_OFFLOAD = {"none": "fits", "model": "fits_with_offload", "sequential": "fits_sequential"}
STATUS_LABELS = {
    "fits": "fits",
    "fits_with_offload": "fits with model CPU offload",
    "fits_sequential": "fits only with sequential offload (very slow)",
    "does_not_fit": "does not fit",
    "over_tier": "beyond this device tier's limits",
}
STATUS_RANK = ("fits", "fits_with_offload", "fits_sequential")


def _limits(name: str) -> tuple:
    s = SETTINGS_BY_NAME[name]
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


def parse_presets(data) -> tuple[Preset, ...]:
    rows = check_rows(check_only_key(data, "preset", "presets.toml"), PRESET_SPEC, "presets.toml preset")
    if SETTINGS_BY_NAME["resolution"].choices:
        bad = [r["id"] for r in rows if r["resolution"] not in SETTINGS_BY_NAME["resolution"].choices]
        if bad:
            raise ConfigError(f"presets.toml: resolution must be one of {SETTINGS_BY_NAME['resolution'].choices} "
                              f"(presets {bad})")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"presets.toml: duplicate ids in {ids}")
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
        return self.peak_bytes / 2**30


def preset_request(preset: Preset, image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> GenerationRequest:
    return build_request(image_size, **preset.values())


def _knob_variants(request: GenerationRequest, offload: str) -> list[GenerationRequest]:
    plain = request.replace(offload=offload)
    decoded = plain.replace(decode_chunk_size=1, vae_tiling=True)
    return [plain, decoded, decoded.replace(forward_chunking=True)]


def _over_tier(preset: Preset, tier: Tier | None) -> bool:
    return tier is not None and (preset.resolution > tier.max_resolution or preset.num_frames > tier.max_frames
                                 or preset.num_inference_steps > tier.max_steps)


def preset_status(preset: Preset, model: MemoryModel, available_bytes: int, dtype: str = "fp16",
                  image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE, tier: Tier | None = None,
                  seconds_per_step: float | None = None) -> PresetStatus:
    request = preset_request(preset, image_size)
    per_step = seconds_per_step
    if per_step is None and tier is not None:
        per_step = estimate_seconds_per_step(model, request, tier.tflops, dtype)
    seconds = per_step * preset.num_inference_steps if per_step else None
    last = request
    for offload in OFFLOAD_MODES:
        for candidate in _knob_variants(request, offload):
            last = candidate
            peak = predict(model, candidate, dtype=dtype).peak_bytes
            if peak <= available_bytes:
                status = "over_tier" if _over_tier(preset, tier) else STATUS_BY_OFFLOAD[offload]
                return PresetStatus(preset, status, candidate, peak, seconds)
    status = "over_tier" if _over_tier(preset, tier) else "does_not_fit"
    return PresetStatus(preset, status, last, predict(model, last, dtype=dtype).peak_bytes, seconds)


def preset_statuses(presets, model, available_bytes, dtype="fp16", image_size=DEFAULT_IMAGE_SIZE, tier=None,
                    seconds_per_step=None) -> list[PresetStatus]:
    return [preset_status(p, model, available_bytes, dtype, image_size, tier, seconds_per_step) for p in presets]


def recommend_preset(presets, model: MemoryModel, available_bytes: int, dtype: str = "fp16",
                     image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE, tier: Tier | None = None,
                     seconds_per_step: float | None = None) -> tuple[PresetStatus | None, list[PresetStatus]]:
    """(the recommended preset's status or None when none fits, every preset's status in file order)."""
    statuses = preset_statuses(presets, model, available_bytes, dtype, image_size, tier, seconds_per_step)
    for status in STATUS_RANK:
        fitting = [s for s in statuses if s.status == status]
        if fitting:
            return fitting[-1], statuses
    return None, statuses
