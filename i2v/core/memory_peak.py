"""Predicted peak GPU memory per phase for (request, offload mode, dtype), from the traced profile tables.

peak = max over phases of (resident weights + activations x overhead x calibration + CUDA context) + reserve.
Activations are interpolated piecewise-linearly over "work" = frames x height x width (they scale ~linearly
with it); the tables come from i2v.core.memory_tables.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from i2v.core.memory_tables import (
    DECODE, FP8_COMPONENT, I2VGEN_DECODED_BYTES_PER_VALUE, I2VGEN_FAMILY, PHASES, RGB_CHANNELS, TEXT_ENCODER,
    TILED_DECODE, VAE_TILE_SAMPLE_SIZE, DtypeTables, MemoryConstants, MemoryModel, _pixels, _work,
    traced_budget, weights_bytes,
)
from i2v.core.offload import ALL, OFFLOAD_BY_NAME, PHASE
from i2v.core.request import GenerationRequest
from i2v.core.settings import OFFLOAD_MODES
from i2v.core.units import GIB


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
    resident = OFFLOAD_BY_NAME[offload].resident
    if resident == ALL:
        total = sum(size for size, _ in sizes.values())
    elif resident == PHASE:
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
    copies = c.group_pinned_copies if OFFLOAD_BY_NAME[offload].pinned_copies and model.offload_applies else 1.0
    return int(c.host_base_gib * GIB + weights + grouped * (copies - 1.0))
