"""Predicted peak GPU memory per phase for (request, offload mode, dtype), from the traced profile table.

peak = max over phases of (resident weights + activations x overhead x calibration + CUDA context) + reserve.
Activations come from configs/memory_profile.json (traced by i2v/profile.py on the meta device) and are
interpolated piecewise-linearly over "work" = frames x height x width (they scale ~linearly with it).
Stdlib only: callers parse the JSON/TOML files and pass the dicts in (i2v/configs.py does that).
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping

from i2v.core.phases import DECODE, DECODE_TILED, MEMORY_PHASES
from i2v.core.request import GenerationRequest
from i2v.core.settings import OFFLOAD_MODES
from i2v.core.units import GIB
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

# name: (kind, minimum, maximum, help). configs/memory.toml must give exactly these keys.
CONSTANT_SPECS: dict[str, tuple[type, float, float, str]] = {
    "cuda_context_gib": (float, 0.0, 8.0, "CUDA context + library workspaces per process"),
    "activation_overhead": (float, 1.0, 3.0, "allocator rounding/fragmentation on top of traced activations"),
    "weights_overhead": (float, 1.0, 2.0, "factor on resident weight bytes (allocator rounding)"),
    "sequential_module_copies": (float, 1.0, 8.0, "sequential offload: largest modules resident at once"),
    "reserve_gib": (float, 0.0, 64.0, "headroom left free for other programs (user-adjustable)"),
    "gpu_efficiency": (float, 0.01, 1.0, "fraction of a device's peak FLOP/s reached (time estimates)"),
    "host_base_gib": (float, 0.0, 64.0, "host RAM of the worker process before any weights"),
    "group_pinned_copies": (float, 1.0, 4.0, "group offload with streams: host copies of the weights (pinned)"),
    "host_to_device_gib_s": (float, 0.5, 200.0, "host-to-GPU copy bandwidth (offload time estimates)"),
    "unet_call_overhead_s": (float, 0.0, 1.0, "fixed cost of one more UNet call (CFG split: two per step)"),
    "chunk_call_overhead_s": (float, 0.0, 0.01, "fixed cost of one more chunk of one wrapped module"),
    "fp8_time_factor": (float, 1.0, 3.0, "compute time factor of fp8 storage (upcast per layer)"),
    "group_time_factor": (float, 1.0, 3.0, "compute time factor of group offloading (hooks, stream syncs)"),
    "sequential_bandwidth_share": (float, 0.01, 1.0, "share of the host link sequential offload's small "
                                                     "synchronous copies reach"),
    "host_cpu_tflops": (float, 0.01, 10.0, "the host CPU's throughput for a text encoder run there (TFLOP/s)"),
}


class ProfileError(I2VError, ValueError):
    """A profile, constants or calibration table that does not have the expected shape."""


@dataclass(frozen=True)
class MemoryConstants:
    cuda_context_gib: float
    activation_overhead: float
    weights_overhead: float
    sequential_module_copies: float
    reserve_gib: float
    gpu_efficiency: float
    host_base_gib: float
    group_pinned_copies: float
    host_to_device_gib_s: float
    unet_call_overhead_s: float
    chunk_call_overhead_s: float
    fp8_time_factor: float
    group_time_factor: float
    sequential_bandwidth_share: float
    host_cpu_tflops: float


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
        raise ProfileError("memory constants: " + "; ".join(problems))
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
            raise ProfileError("a profile phase has no points")
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
            raise ProfileError("a profile phase has no points")
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
        raise ProfileError("profile family section: " + "; ".join(problems))
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
        raise ProfileError("profile family section: " + "; ".join(problems))
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
        raise ProfileError(f"profile version {profile.get('version')!r}, expected {PROFILE_VERSION}; "
                           "run `profile-memory` again")
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
            raise ProfileError(f"profile dtype {dtype} lacks phases {missing}")
        tables[dtype] = _dtype_tables(section, tile)
    if not tables:
        raise ProfileError("profile has no dtypes")
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
        raise ProfileError(f"calibration: unknown phases {unknown}, non-positive factors {bad}")
    return {k: float(v) for k, v in factors.items()}, bool(factors)


@dataclass(frozen=True)
class PhaseFigure:
    phase: str
    weights_bytes: int
    activation_bytes: int
    context_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes + self.context_bytes


@dataclass(frozen=True)
class Prediction:
    offload: str
    dtype: str
    phases: tuple[PhaseFigure, ...]
    reserve_bytes: int
    calibrated: bool
    host_bytes: int = 0

    @property
    def footprint_bytes(self) -> int:
        """The largest phase: what the process itself is predicted to hold at its peak."""
        return max(p.total_bytes for p in self.phases)

    @property
    def peak_bytes(self) -> int:
        """Footprint plus the reserve: what must be available for the job to fit."""
        return self.footprint_bytes + self.reserve_bytes

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=lambda p: p.total_bytes).phase

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / GIB

    def as_dict(self) -> dict[str, Any]:
        return {
            "offload": self.offload, "dtype": self.dtype, "calibrated": self.calibrated,
            "label": "calibrated" if self.calibrated else "predicted",
            "phases": [{**asdict(p), "total_bytes": p.total_bytes, "total_gib": round(p.total_bytes / GIB, 3)}
                       for p in self.phases],
            "peak_phase": self.peak_phase, "reserve_bytes": self.reserve_bytes,
            "footprint_bytes": self.footprint_bytes, "peak_bytes": self.peak_bytes,
            "peak_gib": round(self.peak_gib, 3), "host_bytes": self.host_bytes,
            "host_ram_gib": round(self.host_bytes / GIB, 3),
        }


def _on_cpu(request: GenerationRequest) -> frozenset[str]:
    """Components the plan keeps off the GPU in every phase (the text encoder with text_encoder_cpu)."""
    return frozenset((TEXT_ENCODER,)) if getattr(request, "text_encoder_cpu", False) else frozenset()


def _resident_weights(tables: DtypeTables, phase: str, offload: str, weights_dtype: str,
                      constants: MemoryConstants, family: Mapping[str, Any] | None = None,
                      on_cpu: frozenset[str] = frozenset()) -> float:
    """Weight bytes on the device during a phase: all (none), the running components (model offload), or
    a few modules of the running component (group offload streams the next one in while one runs;
    sequential offload moves each in as it runs). Components kept on the CPU (on_cpu) count nowhere."""
    family = family or I2VGEN_FAMILY
    fp8 = family["fp8_component"]
    sizes = {name: weights_bytes(tables, name, weights_dtype, fp8) for name in tables.weights if name not in on_cpu}
    if offload == "none":
        total = sum(size for size, _ in sizes.values())
    elif offload == "model":
        total = sum(sizes[name][0] for name in family["model_offload_resident"][phase] if name in sizes)
    else:
        active = family["active_component"][phase]
        total = sizes[active][1] * constants.sequential_module_copies if active in sizes else 0.0
    return total * constants.weights_overhead


def decoded_bytes_per_value(model: "MemoryModel | None", dtype: str) -> float:
    """GPU bytes per decoded RGB value held after the decode: the dtype section's traced figure, else the
    family's, else I2VGen-XL's (16: see I2VGEN_DECODED_BYTES_PER_VALUE)."""
    if model is None:
        return float(I2VGEN_DECODED_BYTES_PER_VALUE)
    tables = model.tables.get(dtype)
    if tables is not None and tables.decoded_bytes_per_value is not None:
        return tables.decoded_bytes_per_value
    return float(model.family["decoded_bytes_per_value"])


def decoded_video_bytes(request: GenerationRequest, dtype: str, model: "MemoryModel | None" = None) -> int:
    """The decoded frames held on the GPU when decoding ends (see decoded_bytes_per_value)."""
    values = request.num_frames * RGB_CHANNELS * request.width * request.height
    return int(values * decoded_bytes_per_value(model, dtype))


def _cfg_split(model: MemoryModel, request: GenerationRequest) -> bool:
    """The plan's CFG split where the family has one (Wan's pipeline always runs the halves as two calls)."""
    return bool(request.cfg_split) and bool(model.family["cfg_split_applies"])


def denoise_table(model: MemoryModel, request: GenerationRequest, dtype: str) -> str:
    """The traced denoise table that describes the request's plan (a traced upper bound where not exact).

    CFG batched: `denoise_cfg`; CFG split: `..._split`; chunked: `denoise_cfg_chunk{N}` with N the smallest
    traced budget at or above the plan's (fewer tokens per chunk never need more memory). Without CFG the
    step is one batch-1 forward: `denoise_nocfg`, or when chunked the split trace (two batch-1 forwards).
    A family whose tables hold one call of several per step (denoise_calls_per_step > 1) reads the same names.
    """
    curves = model.tables[dtype].curves
    budget = traced_budget(model, request.chunk_tokens, dtype)
    cfg = request.guidance_scale > 1
    split = _cfg_split(model, request)
    if not budget:
        name = ("denoise_cfg_split" if split else "denoise_cfg") if cfg else "denoise_nocfg"
    else:
        name = f"denoise_cfg_chunk{budget}" + ("_split" if split or not cfg else "")
    if name not in curves:   # an older profile without this technique traced: fall back to the plain trace
        name = "denoise_cfg" if cfg else "denoise_nocfg"
    return name


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


def phase_activations(model: MemoryModel, request: GenerationRequest, dtype: str) -> dict[str, float]:
    """Traced activation bytes per phase (before overhead and calibration). A phase whose family runs no
    component there (Wan: no image encoder), or whose component the plan keeps on the CPU, holds none."""
    tables = model.tables[dtype]
    curves = tables.curves
    family = model.family
    pixels = float(request.width * request.height)
    name = denoise_table(model, request, dtype)
    denoise = chunked_activations(model, request, dtype, name) if name in tables.points \
        else curves[name](pixels * request.num_frames)
    frames = request.num_frames
    chunk = max(1, min(request.decode_chunk_size, frames)) if family["decode_chunk_applies"] else frames
    tile = model.knobs.get("vae_tile_sample_size", VAE_TILE_SAMPLE_SIZE) if request.vae_tiling else None
    decode_work = _work({"width": request.width, "height": request.height, "frames": chunk}, tile)
    figures = {
        "text_encode": lambda: curves["text_encode"](1.0),
        "image_encode": lambda: curves["image_encode"](1.0),
        "vae_encode": lambda: curves["vae_encode"](pixels),
        "denoise": lambda: denoise,
        DECODE: lambda: decode_activations(model, request, dtype, tile, decode_work)
        + decoded_video_bytes(request, dtype, model),
    }
    off = _on_cpu(request)
    active = family["active_component"]
    return {phase: 0.0 if active.get(phase) is None or active[phase] in off else figure()
            for phase, figure in figures.items()}


def decode_activations(model: MemoryModel, request: GenerationRequest, dtype: str, tile: int | None,
                       decode_work: float) -> float:
    """The VAE decode's traced peak: over frames x pixels of one decode call for a family that decodes in
    chunks of frames (I2VGen-XL), over (pixels, frames) for one that decodes the whole video frame by frame
    (Wan 2.2: the peak is one frame's, the frame count adds a little)."""
    name = TILED_DECODE if tile else DECODE
    tables = model.tables[dtype]
    if model.family["decode_chunk_applies"] or name not in tables.surfaces:
        return tables.curves[name](decode_work)
    pixels = _pixels({"width": request.width, "height": request.height}, tile)
    return tables.surfaces[name](pixels, float(request.num_frames))


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


def chunked_activations(model: MemoryModel, request: GenerationRequest, dtype: str, name: str) -> float:
    """A chunked denoise table at the request's shape: a traced point at exactly that shape (the profile's, one
    traced before, or one the model's tracer traces now), else the straight line over frames x pixels.

    Why exact shapes: the chunked peak is the full-size tensors held (linear in frames x pixels) plus one
    chunk's transients, whose size is set by how many whole frames (spatial modules) or rows (temporal ones)
    fit the budget at each UNet level; that steps with the shape, and between traced points a straight line
    is off by -14 % .. +9 % (256x256x16 / 384x384x8, chunk 4096)."""
    key = (dtype, name, request.width, request.height, request.num_frames)
    for width, height, frames, peak in model.tables[dtype].points.get(name, ()):
        if (width, height, frames) == key[2:]:
            return float(peak)
    if key in model.exact_points:
        return float(model.exact_points[key])
    if model.tracer is not None:
        model.exact_points[key] = int(model.tracer(*key))
        return float(model.exact_points[key])
    return model.tables[dtype].curves[name](float(request.width * request.height * request.num_frames))


def with_tracer(model: MemoryModel, tracer: Callable[[str, str, int, int, int], int] | None,
                points: Mapping[tuple[str, str, int, int, int], int] | None = None) -> MemoryModel:
    """The model with chunked peaks traced on demand at exact shapes (and these known points)."""
    return replace(model, tracer=tracer, exact_points=dict(points or {}))


def predict(model: MemoryModel, request: GenerationRequest, offload: str | None = None, dtype: str = "fp16",
            reserve_bytes: int | None = None, device_kind: str = "cuda") -> Prediction:
    """Per-phase prediction for the request's plan; offload overrides the plan's, reserve the configured one.

    device_kind "cpu" drops the CUDA context (the prediction is then of RAM use).
    """
    offload = offload or request.offload
    if offload not in OFFLOAD_MODES:
        raise ValueError(f"offload must be one of {OFFLOAD_MODES}, got {offload!r}")
    if dtype not in model.tables:
        raise ValueError(f"dtype must be one of {tuple(model.tables)}, got {dtype!r}")
    c = model.constants
    tables = model.tables[dtype]
    context = int(c.cuda_context_gib * GIB) if device_kind == "cuda" else 0
    activations = phase_activations(model, request, dtype)
    resident_mode = offload if model.offload_applies else "none"
    phases = tuple(
        PhaseFigure(
            phase=phase,
            weights_bytes=int(_resident_weights(tables, phase, resident_mode, request.weights_dtype, c,
                                                model.family, _on_cpu(request))),
            activation_bytes=int(activations[phase] * c.activation_overhead * model.factors.get(phase, 1.0)),
            context_bytes=context,
        )
        for phase in PHASES
    )
    reserve = int(c.reserve_gib * GIB) if reserve_bytes is None else int(reserve_bytes)
    host = host_ram_bytes(model, request.weights_dtype, resident_mode, dtype,
                          text_encoder_cpu=bool(request.text_encoder_cpu))
    return Prediction(offload, dtype, phases, reserve, model.calibrated, host)


def host_ram_bytes(model: MemoryModel, weights_dtype: str, offload: str, dtype: str = "fp16",
                   text_encoder_cpu: bool = False) -> int:
    """Host RAM the worker needs: its baseline plus the weights, which pass through RAM while loading and stay
    there with any offload; group offloading with streams also pins page-locked copies (about 2x) of the
    weights it offloads (not of a text encoder the plan keeps on the CPU)."""
    tables = model.tables[dtype]
    c = model.constants
    fp8 = model.family["fp8_component"]
    sizes = {name: weights_bytes(tables, name, weights_dtype, fp8)[0] for name in tables.weights}
    weights = sum(sizes.values())
    grouped = sum(size for name, size in sizes.items() if not (text_encoder_cpu and name == TEXT_ENCODER))
    copies = c.group_pinned_copies if offload == "group" and model.offload_applies else 1.0
    return int(c.host_base_gib * GIB + weights + grouped * (copies - 1.0))


def denoise_calls(model: MemoryModel, request: GenerationRequest) -> int:
    """Denoiser calls per step: the family's count with CFG (I2VGen-XL: 1 of batch 2, or 2 of batch 1 when
    split; Wan: 2 of batch 1), one call fewer per pair without CFG."""
    calls = int(model.family["denoise_calls_per_step"])
    if request.guidance_scale <= 1:
        return max(1, calls // 2)
    return calls * (2 if _cfg_split(model, request) else 1)


def flops_per_step(model: MemoryModel, request: GenerationRequest, dtype: str = "fp16") -> float | None:
    """Traced FLOPs of one denoise step: `denoise_calls_per_step` calls of the traced one-call table (I2VGen-XL:
    one UNet forward of CFG batch 2), halved without CFG."""
    curve = model.tables[dtype].flops
    if curve is None:
        return None
    flops = curve(float(request.width * request.height * request.num_frames))
    flops *= int(model.family["denoise_calls_per_step"])
    return flops if request.guidance_scale > 1 else flops / 2


def extra_chunk_calls(request: GenerationRequest, chunk_tokens: int, model: MemoryModel | None = None) -> int:
    """Module calls the chunked denoiser makes beyond the plain one in one step (an estimate from the token
    counts per resolution level; each wrapped module runs ceil(tokens / budget) chunks instead of one call).
    The family says how many modules are wrapped per level and over how many levels (I2VGen-XL: 22 x 4)."""
    if chunk_tokens <= 0:
        return 0
    family = model.family if model is not None else I2VGEN_FAMILY
    scale = float(model.knobs.get("vae_scale_factor", VAE_SCALE_FACTOR)) if model is not None else VAE_SCALE_FACTOR
    cfg = request.guidance_scale > 1
    split = bool(request.cfg_split) and bool(family["cfg_split_applies"])
    calls = int(family["denoise_calls_per_step"])
    batch = 1 if split or not cfg or calls > 1 else 2
    forwards = (calls * (2 if split else 1)) if cfg else max(1, calls // 2)
    latent_w, latent_h = request.width / scale, request.height / scale
    extra = 0
    for level in range(int(family["chunk_levels"])):
        tokens = batch * request.num_frames * (latent_w / 2**level) * (latent_h / 2**level)
        extra += int(family["chunked_modules_per_level"]) * max(0, math.ceil(tokens / chunk_tokens) - 1)
    return extra * forwards


@dataclass(frozen=True)
class TimeEstimate:
    """Predicted time of a job's denoising: per step (compute + plan overheads) and once per job."""
    compute_s: float      # FLOPs / effective throughput, one step
    per_step_s: float     # with CFG split, chunking, fp8 and weight streaming
    per_job_s: float      # moves that happen once per job (model offload, encoders under streaming)

    def total_s(self, steps: int) -> float:
        return self.per_step_s * steps + self.per_job_s


def estimate_time(model: MemoryModel, request: GenerationRequest, tflops: float,
                  dtype: str = "fp16") -> TimeEstimate | None:
    """FLOP-based time of the request's plan: traced FLOPs / (TFLOP/s x efficiency), plus what the plan adds:
    more denoiser calls per step (CFG split; a family's calls per step), extra chunk calls, fp8 upcasts, and weight bytes moved over the
    host link (model offload once per job; group offload per UNet call, overlapped with compute; sequential
    per call, not overlapped). Replace by a measurement where one exists."""
    flops = flops_per_step(model, request, dtype)
    if flops is None or tflops <= 0:
        return None
    c = model.constants
    compute = flops / (tflops * 1e12 * c.gpu_efficiency)
    if request.weights_dtype == "fp8":
        compute *= c.fp8_time_factor
    calls = denoise_calls(model, request)
    per_step = compute + (calls - 1) * c.unet_call_overhead_s
    per_step += extra_chunk_calls(request, traced_budget(model, request.chunk_tokens, dtype)
                                  or request.chunk_tokens, model) * c.chunk_call_overhead_s
    per_job = 0.0
    if model.offload_applies and request.offload != "none":
        tables = model.tables[dtype]
        bandwidth = c.host_to_device_gib_s * GIB
        denoiser = model.family["fp8_component"]
        off = _on_cpu(request)
        unet = weights_bytes(tables, denoiser, request.weights_dtype, denoiser)[0] / bandwidth
        others = sum(weights_bytes(tables, name, request.weights_dtype, denoiser)[0]
                     for name in tables.weights if name != denoiser and name not in off) / bandwidth
        if request.offload == "model":
            per_job = unet + others
        elif request.offload == "group":
            per_step += compute * (c.group_time_factor - 1) + calls * max(0.0, unet - compute / calls)
            per_job = others
        else:
            per_step += calls * unet / c.sequential_bandwidth_share
            per_job = others / c.sequential_bandwidth_share
    if model.offload_applies and TEXT_ENCODER in _on_cpu(request):
        per_job += text_encode_cpu_seconds(model, dtype)
    return TimeEstimate(compute, per_step, per_job)


TEXT_TOKENS_PER_PROMPT = 512      # Wan's UMT5 context (the longest of the families' text encoders)
PROMPTS_PER_JOB = 2               # the prompt and the negative prompt


def text_encode_cpu_seconds(model: MemoryModel, dtype: str = "fp16") -> float:
    """The text encoder's run on the CPU (the plan part text_encoder_cpu): 2 x parameters x tokens per prompt,
    both prompts, at the host's throughput — about a minute for UMT5-XXL, once per job."""
    entry = model.tables[dtype].weights.get(TEXT_ENCODER, {})
    params = float(entry.get("params") or entry.get("bytes", 0) / DTYPE_BYTES.get(dtype, 2))
    flops = 2.0 * params * TEXT_TOKENS_PER_PROMPT * PROMPTS_PER_JOB
    return flops / (model.constants.host_cpu_tflops * 1e12)


def estimate_seconds_per_step(model: MemoryModel, request: GenerationRequest, tflops: float,
                              dtype: str = "fp16") -> float | None:
    """Predicted seconds per denoising step of the request's plan (see estimate_time)."""
    estimate = estimate_time(model, request, tflops, dtype)
    return estimate.per_step_s if estimate else None
