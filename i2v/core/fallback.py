"""The fallback ladder: one notch per call, each strictly lowering the predicted peak.

Order (cheapest in quality and time first): smaller decode chunk + VAE tiling -> model CPU offload ->
forward chunking -> fewer frames -> lower resolution -> sequential CPU offload (then, sequential only,
frames and resolution down to their minimums). A notch that would not lower the prediction is skipped.
"""
from __future__ import annotations

from typing import Callable

from i2v.core.memory import MemoryModel, predict
from i2v.core.request import GenerationRequest, round_to_multiple
from i2v.core.settings import SETTINGS_BY_NAME

RESOLUTIONS = tuple(sorted(SETTINGS_BY_NAME["resolution"].choices))
MIN_FRAMES = int(SETTINGS_BY_NAME["num_frames"].minimum)
FALLBACK_MIN_FRAMES = 8     # frames are not cut below this before sequential offload has been tried
FRAMES_STEP = 8             # frames go down in multiples of this (32 -> 24 -> 16 -> 8), then halve

Notch = Callable[[GenerationRequest], "tuple[GenerationRequest, str] | None"]


def short_side(request: GenerationRequest) -> int:
    return min(request.width, request.height)


def with_resolution(request: GenerationRequest, resolution: int) -> GenerationRequest:
    """The request at a new short side, keeping its aspect (long side rounded to the size multiple)."""
    long_side = round_to_multiple(max(request.width, request.height) * resolution / short_side(request))
    width, height = (long_side, resolution) if request.width >= request.height else (resolution, long_side)
    return request.replace(width=width, height=height, resolution=resolution)


def fewer_frames(frames: int, floor: int) -> int | None:
    """The next lower frame count (multiples of FRAMES_STEP, then halving), or None at the floor."""
    lower = ((frames - 1) // FRAMES_STEP) * FRAMES_STEP if frames > FRAMES_STEP else frames // 2
    lower = max(lower, floor)
    return lower if lower < frames else None


def lower_resolution(request: GenerationRequest) -> int | None:
    below = [r for r in RESOLUTIONS if r < short_side(request)]
    return below[-1] if below else None


# ---------------------------------------------------------------- the notches, in ladder order
def decode_notch(r: GenerationRequest):
    chunk = max(1, r.decode_chunk_size // 2)
    if chunk == r.decode_chunk_size and r.vae_tiling:
        return None
    return r.replace(decode_chunk_size=chunk, vae_tiling=True), (
        f"VAE decode {chunk} frame(s) at a time with tiling (was {r.decode_chunk_size}"
        f"{', tiling' if r.vae_tiling else ', no tiling'})")


def model_offload_notch(r: GenerationRequest):
    if r.offload != "none":
        return None
    return r.replace(offload="model"), "model CPU offload (each component moves to the GPU only while it runs)"


def forward_chunking_notch(r: GenerationRequest):
    if r.forward_chunking:
        return None
    return r.replace(forward_chunking=True), "UNet feed-forward chunking"


def frames_notch(r: GenerationRequest):
    floor = MIN_FRAMES if r.offload == "sequential" else min(FALLBACK_MIN_FRAMES, r.num_frames)
    frames = fewer_frames(r.num_frames, floor)
    if frames is None:
        return None
    return r.replace(num_frames=frames), f"fewer frames: {r.num_frames} -> {frames}"


def resolution_notch(r: GenerationRequest):
    if r.offload != "sequential" and r.num_frames > FALLBACK_MIN_FRAMES:
        return None                       # frames go to their floor first
    resolution = lower_resolution(r)
    if resolution is None:
        return None
    smaller = with_resolution(r, resolution)
    return smaller, f"lower resolution: {r.width}x{r.height} -> {smaller.width}x{smaller.height}"


def sequential_offload_notch(r: GenerationRequest):
    if r.offload == "sequential":
        return None
    return r.replace(offload="sequential"), "sequential CPU offload (lowest memory, much slower)"


LADDER: tuple[Notch, ...] = (decode_notch, model_offload_notch, forward_chunking_notch, frames_notch,
                             resolution_notch, sequential_offload_notch)
# After a decode-time OOM the latents are kept: only notches that do not change what was sampled apply.
DECODE_SAFE_NOTCHES: tuple[Notch, ...] = (decode_notch, model_offload_notch, sequential_offload_notch)


def next_fallback(request: GenerationRequest, model: MemoryModel, dtype: str = "fp16"):
    """(request', description) one notch down the ladder with a strictly lower predicted peak, or None."""
    current = predict(model, request, dtype=dtype).peak_bytes
    for notch in LADDER:
        step = notch(request)
        if step is not None and predict(model, step[0], dtype=dtype).peak_bytes < current:
            return step
    return None


def suggest_config(request: GenerationRequest, free_bytes: int, model: MemoryModel, dtype: str = "fp16",
                   max_notches: int = 64):
    """Walk the ladder until the prediction fits free_bytes: (request', [descriptions]) or None if nothing fits.

    Used after an OOM with the freshly read free memory; an unchanged request means it already fits.
    """
    steps: list[str] = []
    for _ in range(max_notches):
        if predict(model, request, dtype=dtype).peak_bytes <= free_bytes:
            return request, steps
        step = next_fallback(request, model, dtype)
        if step is None:
            return None
        request, description = step
        steps.append(description)
    return None
