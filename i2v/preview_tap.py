"""The live preview's tap on a running job: a forward pre-hook on the denoiser that, every few steps, turns its
input latents into a small JPEG strip (i2v.preview) and hands it on; installed only while a job samples.

The latents are read, never written, and no random numbers are drawn: the video is the same with or without
it (tests/test_preview_run.py). Each family's runtime says how its denoiser's input becomes
[frames, channels, h, w] (`preview_latents`: LTX packs its latents into tokens). A failing preview is logged
once and switched off for the job; it never fails the job.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass
class PreviewTap:
    """every: a preview after every `every` denoising steps (0: none); send(steps_done, total, jpeg)."""
    every: int
    send: Callable[[int, int, bytes], None]


def due(step: int, every: int) -> bool:
    """Whether the denoiser's call for `step` (1-based: its input holds the latents after step - 1 steps)
    gets a preview: after every `every` finished steps."""
    return every > 0 and step > 1 and (step - 1) % every == 0


@contextmanager
def installed(loaded, request, tap: PreviewTap | None):
    """The tap on `loaded`'s denoiser for one sampling run (nothing when off or the family has no preview)."""
    hook = getattr(loaded.runtime, "preview_latents", None)
    rgb = loaded.family.preview_rgb() if tap is not None and tap.every > 0 and hook is not None else None
    if rgb is None:
        yield
        return
    from i2v import preview

    factors, bias = rgb
    per_step = max(1, loaded.runtime.denoise_calls_per_step(request.guidance_scale))
    total, pipe = request.num_inference_steps, loaded.pipe
    state = {"calls": 0, "broken": False}

    def before_denoiser(_module, args, kwargs):
        state["calls"] += 1
        call = state["calls"] - 1
        if call % per_step or state["broken"] or not due(call // per_step + 1, tap.every):
            return
        try:
            data = preview.render(hook(pipe, args, kwargs, request), factors, bias)
        except Exception:  # noqa: BLE001 - a preview is a nicety: the job goes on without it
            state["broken"] = True
            log.exception("live preview failed; no more previews for this job")
            return
        tap.send(call // per_step, total, data)

    handle = loaded.denoiser.register_forward_pre_hook(before_denoiser, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
