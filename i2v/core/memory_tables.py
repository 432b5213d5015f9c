"""The memory engine's tables: the traced profile, the constants (configs/memory.toml) and the calibration,
checked and prepared for fast interpolation (Curve, Surface), plus what the tables say about plans (traced chunk
budgets, fp8 bytes). Prediction is i2v.core.memory_peak, time i2v.core.memory_time; i2v.core.memory is the
public face of all three. Stdlib only: callers parse the JSON/TOML files and pass the dicts in (i2v/configs.py).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping

from i2v.core.phases import DECODE, DECODE_TILED, MEMORY_PHASES
from i2v.core.errors import I2VError

PROFILE_VERSION = 1
VAE_SCALE_FACTOR = 8            # pixels per latent pixel (SD 2.x VAE)
VAE_TILE_SAMPLE_SIZE = 512      # vae.tile_sample_min_size used with tiling (tile_latent_min_size = this / 8)
DTYPES = ("fp16", "bf16", "fp32")
DTYPE_BYTES = {"fp16": 2, "bf16": 2, "fp32": 4}
FLOAT32_BYTES = 4
RGB_CHANNELS = 3

CHUNK_TABLE = re.compile(r"denoise_cfg_chunk(\d+)")   # chunked denoise traces, by token budget
FP8_COMPONENT = "unet"          # fp8 storage (layerwise casting) is applied to the UNet's weights
# Time model of the chunked UNet: per chunk, a few kernels more per wrapped module. Counted on the I2VGen-XL
# UNet: about this many wrapped modules per resolution level (resnets, temporal convs, spatial and temporal
# transformers, resamplers of the down and up blocks), over 4 levels halving each side.
CHUNKED_MODULES_PER_LEVEL = 22
UNET_LEVELS = 4

PHASES = MEMORY_PHASES
# The component each phase runs (sequential offload keeps about one module of it on the device).
ACTIVE_COMPONENT = {"text_encode": "text_encoder", "image_encode": "image_encoder", "vae_encode": "vae",
                    "denoise": "unet", DECODE: "vae"}
# Model CPU offload (accelerate hooks, order text_encoder -> image_encoder -> unet -> vae): a module's hook
# offloads only its predecessor, so the VAE loaded for the image encode stays through the denoise loop, and
# the image encoder stays during that VAE encode.
MODEL_OFFLOAD_RESIDENT = {"text_encode": ("text_encoder",), "image_encode": ("image_encoder",),
                          "vae_encode": ("image_encoder", "vae"), "denoise": ("unet", "vae"),
                          DECODE: ("vae",)}
# GPU bytes per decoded RGB value once the last chunk is decoded (i2v.pipeline.decode_frames): the float32
# pieces decode_latents returns, their torch.cat copy, and the two float32 temporaries of the denormalisation
# `(x * 0.5 + 0.5).clamp(0, 1)` alive together before `.cpu()`.
I2VGEN_DECODED_BYTES_PER_VALUE = 4 * FLOAT32_BYTES
# The "family" section of a profile (written by a family's tracer); a profile without one is I2VGen-XL's.
I2VGEN_FAMILY: dict[str, Any] = {
    "name": "i2vgen-xl",
    "components": ["text_encoder", "image_encoder", "unet", "vae"],
    "active_component": dict(ACTIVE_COMPONENT),
    "model_offload_resident": {phase: list(names) for phase, names in MODEL_OFFLOAD_RESIDENT.items()},
    "fp8_component": FP8_COMPONENT,
    "denoise_calls_per_step": 1,       # one UNet call holds both CFG halves (batch 2)
    "cfg_split_applies": True,
    "decode_chunk_applies": True,
    "decoded_bytes_per_value": I2VGEN_DECODED_BYTES_PER_VALUE,
    "text_encoder_cpu_applies": False,
    "chunked_modules_per_level": CHUNKED_MODULES_PER_LEVEL,
    "chunk_levels": UNET_LEVELS,
}
# Defaults for keys a family section leaves out (a family other than I2VGen-XL: a DiT chunked at one level).
FAMILY_DEFAULTS: dict[str, Any] = {"denoise_calls_per_step": 1, "cfg_split_applies": True,
                                   "decode_chunk_applies": True,
                                   "decoded_bytes_per_value": I2VGEN_DECODED_BYTES_PER_VALUE,
                                   "chunked_modules_per_level": CHUNKED_MODULES_PER_LEVEL, "chunk_levels": 1}
TEXT_ENCODER = "text_encoder"   # the component request.text_encoder_cpu keeps on the CPU



class ProfileError(I2VError, ValueError):
    """A profile, constants or calibration table that does not have the expected shape."""


def _constant(low: float, high: float, help_text: str) -> Any:
    """A field of MemoryConstants with its allowed range and meaning: the one table configs/memory.toml is
    checked against (CONSTANT_SPECS is derived from it)."""
    return field(metadata={"range": (low, high), "help": help_text})


@dataclass(frozen=True)
class MemoryConstants:
    cuda_context_gib: float = _constant(0.0, 8.0, "CUDA context + library workspaces per process")
    activation_overhead: float = _constant(1.0, 3.0, "allocator rounding/fragmentation on top of traced activations")
    weights_overhead: float = _constant(1.0, 2.0, "factor on resident weight bytes (allocator rounding)")
    sequential_module_copies: float = _constant(1.0, 8.0, "sequential offload: largest modules resident at once")
    reserve_gib: float = _constant(0.0, 64.0, "headroom left free for other programs (user-adjustable)")
    gpu_efficiency: float = _constant(0.01, 1.0, "fraction of a device's peak FLOP/s reached (time estimates)")
    host_base_gib: float = _constant(0.0, 64.0, "host RAM of the worker process before any weights")
    group_pinned_copies: float = _constant(1.0, 4.0, "group offload with streams: host copies of the weights (pinned)")
    host_to_device_gib_s: float = _constant(0.5, 200.0, "host-to-GPU copy bandwidth (offload time estimates)")
    unet_call_overhead_s: float = _constant(0.0, 1.0, "fixed cost of one more UNet call (CFG split: two per step)")
    chunk_call_overhead_s: float = _constant(0.0, 0.01, "fixed cost of one more chunk of one wrapped module")
    fp8_time_factor: float = _constant(1.0, 3.0, "compute time factor of fp8 storage (upcast per layer)")
    group_time_factor: float = _constant(1.0, 3.0, "compute time factor of group offloading (hooks, stream syncs)")
    sequential_bandwidth_share: float = _constant(0.01, 1.0, "share of the host link sequential offload's small "
                                                             "synchronous copies reach")
    host_cpu_tflops: float = _constant(0.01, 10.0, "the host CPU's throughput for a text encoder run there (TFLOP/s)")


# name: (kind, minimum, maximum, help), read off MemoryConstants. configs/memory.toml must give exactly these keys.
CONSTANT_SPECS: dict[str, tuple[type, float, float, str]] = {
    f.name: (float, *f.metadata["range"], f.metadata["help"]) for f in fields(MemoryConstants)}


def parse_constants(data: Mapping[str, Any]) -> MemoryConstants:
    """Validate the parsed memory.toml: every key known, present, a number within its range."""
    problems = [f"unknown key {key!r}" for key in sorted(set(data) - set(CONSTANT_SPECS))]
    for name, (_, low, high, _help) in CONSTANT_SPECS.items():
        value = data.get(name)
        if value is None:
            problems.append(f"missing key {name!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            problems.append(f"{name} must be a number in [{low}, {high}], got {value!r}")
    if problems:
        raise ProfileError("profile_constants", detail="; ".join(problems))
    return MemoryConstants(**{name: float(data[name]) for name in CONSTANT_SPECS})


@dataclass(frozen=True)
class Curve:
    """Piecewise-linear bytes over work units (made non-decreasing), extrapolated by the end segments."""
    xs: tuple[float, ...]
    ys: tuple[float, ...]

    @classmethod
    def from_points(cls, points: list[tuple[float, float]]) -> "Curve":
        merged: dict[float, float] = {}
        for x, y in points:
            merged[x] = max(y, merged.get(x, 0.0))
        xs = sorted(merged)
        ys, running = [], 0.0
        for x in xs:
            running = max(running, merged[x])
            ys.append(running)
        if not xs:
            raise ProfileError("profile_no_points")
        return cls(tuple(xs), tuple(ys))

    def __call__(self, x: float) -> float:
        xs, ys = self.xs, self.ys
        if len(xs) == 1:
            return ys[0]                       # a phase of fixed size (the text and image encoders)
        if x <= xs[0]:
            return ys[0] * max(x, 0.0) / xs[0]   # below the grid: proportional (activations ~ work)
        i = min(bisect.bisect_left(xs, x), len(xs) - 1)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)   # inside, or beyond the end along the last segment


@dataclass(frozen=True)
class Surface:
    """Bytes over (pixels per frame, frames): a Curve over pixels for each traced frame count, linear between
    (and beyond) the frame counts. For a decode that runs frame by frame (Wan's causal VAE), whose peak is set by
    one frame's size and grows only a little with the frame count, frames x pixels is the wrong axis: a big
    frame with few frames and a small one with many would share a value."""
    frames: tuple[float, ...]
    rows: tuple[Curve, ...]

    @classmethod
    def from_points(cls, points: list[tuple[float, float, float]]) -> "Surface":
        by_frames: dict[float, list[tuple[float, float]]] = {}
        for pixels, frames, value in points:
            by_frames.setdefault(frames, []).append((pixels, value))
        frames = tuple(sorted(by_frames))
        if not frames:
            raise ProfileError("profile_no_points")
        return cls(frames, tuple(Curve.from_points(by_frames[f]) for f in frames))

    def __call__(self, pixels: float, frames: float) -> float:
        if len(self.frames) == 1:
            return self.rows[0](pixels)
        i = min(max(bisect.bisect_left(self.frames, frames), 1), len(self.frames) - 1)
        f0, f1 = self.frames[i - 1], self.frames[i]
        y0, y1 = self.rows[i - 1](pixels), self.rows[i](pixels)
        return max(0.0, y0 + (y1 - y0) * (frames - f0) / (f1 - f0))


def _pixels(point: Mapping[str, Any], tile: int | None = None) -> float:
    """width x height of one frame; with VAE tiling each side counts at most one tile."""
    width, height = max(1, point["width"]), max(1, point["height"])
    if tile:
        width, height = min(width, tile), min(height, tile)
    return float(width * height)


def _work(point: Mapping[str, Any], tile: int | None = None) -> float:
    """frames x width x height; with VAE tiling each side counts at most one tile (one tile decodes at a time)."""
    width, height = max(1, point["width"]), max(1, point["height"])
    if tile:
        width, height = min(width, tile), min(height, tile)
    return float(point["frames"]) * width * height


@dataclass(frozen=True)
class DtypeTables:
    weights: dict[str, dict[str, int]]
    curves: dict[str, Curve]
    flops: Curve | None
    decoded_bytes_per_value: float | None = None     # the dtype section's own figure, when its tracer wrote one
    points: dict[str, tuple[tuple[int, int, int, int], ...]] = field(default_factory=dict)  # chunked tables
    surfaces: dict[str, Surface] = field(default_factory=dict)     # decode tables over (pixels, frames)


@dataclass(frozen=True)
class MemoryModel:
    """The profile tables, ready for fast prediction, with the constants and calibration factors."""
    tables: dict[str, DtypeTables]
    constants: MemoryConstants
    factors: dict[str, float] = field(default_factory=dict)   # phase -> measured/predicted, from calibration
    calibrated: bool = False
    knobs: dict[str, Any] = field(default_factory=dict)
    offload_applies: bool = True      # False on CPU: every weight stays in RAM whatever the offload mode
    family: dict[str, Any] = field(default_factory=lambda: parse_family(None))
    # Chunked denoise peaks traced at exact shapes: (dtype, table, width, height, frames) -> bytes, filled by
    # `tracer` (torch side, i2v/profile_points.py) on demand; without one, chunked tables are interpolated.
    exact_points: dict[tuple[str, str, int, int, int], int] = field(default_factory=dict, compare=False)
    tracer: Callable[[str, str, int, int, int], int] | None = field(default=None, compare=False)


def _dtype_tables(section: Mapping[str, Any], tile: int) -> DtypeTables:
    phases = section["phases"]
    curves = {name: Curve.from_points([(_work(p, tile if name == TILED_DECODE else None), p["bytes"])
                                       for p in points])
              for name, points in phases.items()}
    flop_points = [(_work(p), p["flops"]) for p in phases.get("denoise_cfg", []) if "flops" in p]
    per_value = section.get("decoded_bytes_per_value")
    return DtypeTables(
        weights={k: dict(v) for k, v in section["weights"].items()},
        curves=curves,
        flops=Curve.from_points(flop_points) if flop_points else None,
        decoded_bytes_per_value=float(per_value) if per_value is not None else None,
        points={name: tuple((int(p["width"]), int(p["height"]), int(p["frames"]), int(p["bytes"]))
                            for p in points)
                for name, points in phases.items() if CHUNK_TABLE.match(name)},
        surfaces={name: Surface.from_points([(_pixels(p, tile if name == TILED_DECODE else None), p["frames"],
                                              p["bytes"]) for p in points])
                  for name, points in phases.items() if name in (DECODE, TILED_DECODE)},
    )


TILED_DECODE = DECODE_TILED
REQUIRED_PHASE_TABLES = ("text_encode", "image_encode", "vae_encode", "denoise_cfg", "denoise_nocfg",
                         DECODE, TILED_DECODE)
PHASE_TABLE = {"text_encode": "text_encode", "image_encode": "image_encode", "vae_encode": "vae_encode"}


def parse_family(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The profile's "family" section checked, with defaults filled; None (a profile without one): I2VGen-XL."""
    if not section:
        return {**I2VGEN_FAMILY, "active_component": dict(I2VGEN_FAMILY["active_component"]),
                "model_offload_resident": {k: list(v) for k, v in I2VGEN_FAMILY["model_offload_resident"].items()},
                "components": list(I2VGEN_FAMILY["components"])}
    family = {**FAMILY_DEFAULTS, **section}
    problems = [f"missing {key!r}" for key in ("name", "components", "active_component", "fp8_component")
                if key not in section]
    if problems:
        raise ProfileError("profile_family_section", detail="; ".join(problems))
    components = list(family["components"])
    family["components"] = components
    active = {phase: family["active_component"].get(phase) for phase in PHASES}
    resident = {phase: list(family.get("model_offload_resident", {}).get(phase) or ()) for phase in PHASES}
    unknown = sorted({str(c) for c in list(active.values()) + [n for v in resident.values() for n in v]
                      if c is not None and c not in components})
    if unknown:
        problems.append(f"components {unknown} not in {components}")
    calls = family["denoise_calls_per_step"]
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        problems.append(f"denoise_calls_per_step must be a whole number >= 1, got {calls!r}")
    per_value = family["decoded_bytes_per_value"]
    if isinstance(per_value, bool) or not isinstance(per_value, (int, float)) or per_value < 0:
        problems.append(f"decoded_bytes_per_value must be a number >= 0 (0: the decode sends its frames to "
                        f"the host), got {per_value!r}")
    for key in ("cfg_split_applies", "decode_chunk_applies"):
        if not isinstance(family[key], bool):
            problems.append(f"{key} must be true or false, got {family[key]!r}")
    if problems:
        raise ProfileError("profile_family_section", detail="; ".join(problems))
    family["active_component"], family["model_offload_resident"] = active, resident
    family.setdefault("text_encoder_cpu_applies", TEXT_ENCODER in components)
    return family


def family_info(model: "MemoryModel") -> dict[str, Any]:
    """The model's family section with its defaults filled (a copy: callers may keep or change it)."""
    family = model.family
    return {**family, "components": list(family["components"]),
            "active_component": dict(family["active_component"]),
            "model_offload_resident": {k: list(v) for k, v in family["model_offload_resident"].items()}}


def plan_parts_apply(model: "MemoryModel") -> dict[str, bool]:
    """Plan part -> whether this model's profile can predict a change of it (what the plan ladder may vary):
    chunking only with chunked traces, fp8 only with traced fp8 bytes, the others by the family section."""
    family = model.family
    dtypes = tuple(model.tables)
    return {
        "offload": True,
        "cfg_split": bool(family["cfg_split_applies"]),
        "chunk_tokens": any(chunk_budgets(model, dtype) for dtype in dtypes),
        "weights_dtype": any(fp8_available(model, dtype) for dtype in dtypes),
        "decode_chunk": bool(family["decode_chunk_applies"]),
        "vae_tiling": True,
        "text_encoder_cpu": bool(family["text_encoder_cpu_applies"]),
    }


def load_model(profile: Mapping[str, Any], constants: Mapping[str, Any] | MemoryConstants,
               calibration: Mapping[str, Any] | None = None) -> MemoryModel:
    """Check the parsed profile (and optional calibration) and prepare the interpolation tables."""
    if profile.get("version") != PROFILE_VERSION:
        raise ProfileError("profile_version", version=repr(profile.get("version")), expected=PROFILE_VERSION)
    tables = {}
    knobs = dict(profile.get("knobs", {}))
    tile = int(knobs.get("vae_tile_sample_size", VAE_TILE_SAMPLE_SIZE))
    family = parse_family(profile.get("family"))
    idle = {PHASE_TABLE[phase] for phase, name in family["active_component"].items()
            if name is None and phase in PHASE_TABLE}       # a phase that runs nothing needs no table
    for dtype, section in profile.get("dtypes", {}).items():
        missing = [name for name in REQUIRED_PHASE_TABLES
                   if name not in section.get("phases", {}) and name not in idle]
        if missing:
            raise ProfileError("profile_lacks_phases", dtype=dtype, missing=missing)
        tables[dtype] = _dtype_tables(section, tile)
    if not tables:
        raise ProfileError("profile_no_dtypes")
    if not isinstance(constants, MemoryConstants):
        constants = parse_constants(constants)
    factors, calibrated = parse_calibration(calibration)
    return MemoryModel(tables, constants, factors, calibrated, knobs, family=family)


def for_device(model: MemoryModel, device_kind: str) -> MemoryModel:
    """The model for a device kind: on "cpu" there is no CUDA context (predictions are of RAM use)."""
    if device_kind == "cuda":
        return model
    return replace(model, constants=replace(model.constants, cuda_context_gib=0.0), offload_applies=False)


def parse_calibration(calibration: Mapping[str, Any] | None) -> tuple[dict[str, float], bool]:
    """(phase -> factor, calibrated?) from a parsed calibration.json; ({}, False) when there is none."""
    if not calibration:
        return {}, False
    factors = calibration.get("factors", {})
    unknown = sorted(set(factors) - set(PHASES))
    bad = [k for k, v in factors.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0]
    if unknown or bad:
        raise ProfileError("profile_calibration", unknown=unknown, bad=bad)
    return {k: float(v) for k, v in factors.items()}, bool(factors)


def chunk_budgets(model: MemoryModel, dtype: str = "fp16") -> tuple[int, ...]:
    """Token budgets the profile has chunked traces for (with and without CFG split), largest first."""
    found = []
    for name in model.tables[dtype].curves:
        match = CHUNK_TABLE.fullmatch(name)
        if match and f"denoise_cfg_chunk{match.group(1)}_split" in model.tables[dtype].curves:
            found.append(int(match.group(1)))
    return tuple(sorted(set(found), reverse=True))


def traced_budget(model: MemoryModel, chunk_tokens: int, dtype: str) -> int:
    """The traced budget that bounds chunk_tokens from above (0: no chunking, or above every traced one)."""
    if chunk_tokens <= 0:
        return 0
    above = [b for b in chunk_budgets(model, dtype) if b >= chunk_tokens]
    return min(above) if above else 0


def weights_bytes(tables: DtypeTables, component: str, weights_dtype: str,
                  fp8_component: str = FP8_COMPONENT) -> tuple[float, float]:
    """(all bytes, largest module bytes) of a component's weights; with fp8 storage the denoiser's bytes after
    diffusers' layerwise casting (traced: its Linear and Conv weights in fp8, norms kept), modules scaled alike."""
    entry = tables.weights[component]
    total, largest = float(entry["bytes"]), float(entry["largest_module_bytes"])
    if weights_dtype == "fp8" and component == fp8_component and entry.get("fp8_bytes"):
        largest *= entry["fp8_bytes"] / total
        total = float(entry["fp8_bytes"])
    return total, largest


def fp8_available(model: MemoryModel, dtype: str = "fp16") -> bool:
    """fp8 storage is planned only for a half-precision compute dtype (fp16, bf16), and only when the profile
    traced the castable bytes of the family's denoiser."""
    component = model.family["fp8_component"]
    return dtype in model.tables and DTYPE_BYTES.get(dtype) == 2 \
        and bool(model.tables[dtype].weights.get(component, {}).get("fp8_bytes"))


def with_tracer(model: MemoryModel, tracer: Callable[[str, str, int, int, int], int] | None,
                points: Mapping[tuple[str, str, int, int, int], int] | None = None) -> MemoryModel:
    """The model with chunked peaks traced on demand at exact shapes (and these known points)."""
    return replace(model, tracer=tracer, exact_points=dict(points or {}))
