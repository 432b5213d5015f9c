"""GenerationRequest: the validated, frozen description of one job, and how to build it from raw inputs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from i2v.core.plans import Plan
from i2v.core.settings import (
    DEFAULT_DECODE_CHUNK_SIZE,
    MAX_ASPECT_RATIO,
    MAX_PROMPT_CHARS,
    OFFLOAD_MODES,
    SETTINGS,
    SIZE_MULTIPLE,
    WEIGHTS_DTYPES,
    defaults,
)


class RequestError(ValueError):
    """Bad user input; the message lists every problem and is safe to show."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    width: int
    height: int
    num_frames: int
    fps: int
    num_inference_steps: int
    guidance_scale: float
    seed: int = -1
    negative_prompt: str = ""
    resolution: int = 512
    # The plan (i2v.core.plans.Plan): how the job runs, chosen by the clamp / fallback ladder, not by sliders.
    # Exact parts change memory and time, never the pixels; weights_dtype fp8 and vae_tiling are lossy.
    offload: str = "none"
    cfg_split: bool = False
    chunk_tokens: int = 0
    weights_dtype: str = "fp16"
    decode_chunk_size: int = DEFAULT_DECODE_CHUNK_SIZE
    vae_tiling: bool = False

    def replace(self, **changes: Any) -> "GenerationRequest":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def plan(self) -> Plan:
        """The plan part of the request."""
        return Plan.of(self)

    def with_plan(self, plan: Plan) -> "GenerationRequest":
        return self.replace(**plan.request_fields())


def round_to_multiple(value: float, multiple: int = SIZE_MULTIPLE) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def size_for_aspect(resolution: int, image_width: int, image_height: int) -> tuple[int, int]:
    """(width, height) with the short side = resolution and the image's aspect (capped), multiples of 8."""
    if image_width <= 0 or image_height <= 0:
        raise RequestError(f"the image has no size ({image_width}x{image_height})")
    aspect = min(max(image_width, image_height) / min(image_width, image_height), MAX_ASPECT_RATIO)
    long_side = round_to_multiple(resolution * aspect)
    return (long_side, resolution) if image_width >= image_height else (resolution, long_side)


def validate_values(values: Mapping[str, Any]) -> list[str]:
    """Every problem with the user-facing values, checked against the settings table."""
    problems = []
    for setting in SETTINGS:
        if setting.name in values:
            problem = setting.check(values[setting.name])
            if problem:
                problems.append(problem)
    for key in ("prompt", "negative_prompt"):
        if isinstance(values.get(key), str) and len(values[key]) > MAX_PROMPT_CHARS:
            problems.append(f"{key} is longer than {MAX_PROMPT_CHARS} characters ({len(values[key])})")
    unknown = sorted(set(values) - {s.name for s in SETTINGS})
    if unknown:
        problems.append(f"unknown parameter(s): {', '.join(unknown)}")
    return problems


def build_request(image_size: tuple[int, int], **values: Any) -> GenerationRequest:
    """Validate raw values (missing ones take the defaults) and size them to the image's aspect."""
    merged = {**defaults(), **{k: v for k, v in values.items() if v is not None}}
    for name in ("resolution", "num_frames", "fps", "num_inference_steps", "seed"):
        value = merged.get(name)
        if isinstance(value, float) and value.is_integer():
            merged[name] = int(value)
    problems = validate_values(merged)
    if problems:
        raise RequestError("; ".join(problems))
    width, height = size_for_aspect(merged["resolution"], *image_size)
    return GenerationRequest(
        prompt=merged["prompt"].strip(),
        negative_prompt=merged["negative_prompt"].strip(),
        resolution=merged["resolution"],
        width=width,
        height=height,
        num_frames=merged["num_frames"],
        fps=merged["fps"],
        num_inference_steps=merged["num_inference_steps"],
        guidance_scale=float(merged["guidance_scale"]),
        seed=merged["seed"],
    )


def check_memory_knobs(request: GenerationRequest) -> None:
    """Reject internal knob values no code path should produce."""
    if request.offload not in OFFLOAD_MODES:
        raise RequestError(f"offload must be one of {OFFLOAD_MODES}, got {request.offload!r}")
    if request.weights_dtype not in WEIGHTS_DTYPES:
        raise RequestError(f"weights_dtype must be one of {WEIGHTS_DTYPES}, got {request.weights_dtype!r}")
    if request.chunk_tokens < 0:
        raise RequestError(f"chunk_tokens must be 0 (off) or positive, got {request.chunk_tokens}")
    if request.decode_chunk_size < 1:
        raise RequestError(f"decode_chunk_size must be at least 1, got {request.decode_chunk_size}")
    if request.width % SIZE_MULTIPLE or request.height % SIZE_MULTIPLE:
        raise RequestError(f"width and height must be multiples of {SIZE_MULTIPLE}, got {request.width}x{request.height}")
