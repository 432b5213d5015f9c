"""Cancel points inside a denoising step, so Stop takes effect within one layer's compute, not one step's.

The step check (PhaseHooks' pre-hook on the UNet) comes once per UNet call: 6-20 s a step on the tiny model
at large sizes on a CPU, tens of seconds for the full model on a small GPU. While the pipeline runs a job, the
runner adds a forward pre-hook that calls the job's check to every attention, feed-forward and convolution
of the UNet and the VAE. Those layers run inside every chunk of the chunked UNet (its wrappers call the
module's own forward, whose layers are hooked), inside each CFG half (the second half never starts after a
Stop in the first), and inside every VAE call, so the longest stretch between two checks is about one layer's
work (an attention at most: 0.7 s on the tiny model at 768x512 on one CPU thread). The check raises the same
GenerationCancelled as the step check.

On CUDA the host queues kernels ahead of the GPU (up to the launch queue, about a thousand kernels): a check
that sees Stop there would leave that queue to drain, seconds of a slow step. So every RUN_AHEAD_POINTS points
an event is recorded and the host waits for the one recorded two stretches before: when Stop is seen, at most
about 2 x RUN_AHEAD_POINTS layers are queued, while the GPU never runs dry (a stretch stays queued).

The hooks exist only inside `installed(...)`: outside a job the pipeline is the plain one, and the results are
unchanged (a pre-hook that returns None touches nothing). `installed(pipe, None)` installs nothing.
"""
from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

COMPONENTS = ("unet", "transformer", "vae")   # the denoiser (UNet or DiT) and the VAE: seconds per call
RUN_AHEAD_POINTS = 32               # CUDA: the host runs at most about twice this many layers ahead of the GPU


class Pacer:
    """Bounds how far the host runs ahead of the device: called at every point, it records an event every
    `every` calls and waits for the event recorded two stretches earlier. `new_event()` returns an object
    recorded on the current stream with a blocking synchronize() (torch.cuda.Event)."""

    def __init__(self, every: int, new_event: Callable[[], object]):
        self.every, self.new_event = every, new_event
        self.calls = 0
        self.pending: deque = deque()

    def __call__(self) -> None:
        self.calls += 1
        if self.calls % self.every:
            return
        self.pending.append(self.new_event())
        if len(self.pending) > 2:
            self.pending.popleft().synchronize()


def cuda_pacer() -> Pacer | None:
    """A Pacer on CUDA's current stream, or None when CUDA is not in use in this process."""
    import torch

    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None

    def recorded():
        event = torch.cuda.Event()
        event.record()
        return event

    return Pacer(RUN_AHEAD_POINTS, recorded)


def points(model) -> list:
    """The modules of `model` that get a cancel check: every attention, feed-forward and convolution. Between
    two of them run only a few cheap layers (norms, activations, a projection); checking before every Linear as
    well would triple the hooks (and their cost on a launch-bound step) for no shorter stretch."""
    from diffusers.models.attention import FeedForward
    from diffusers.models.attention_processor import Attention
    from torch.nn.modules.conv import _ConvNd

    return [module for module in model.modules()
            if module is not model and isinstance(module, (Attention, FeedForward, _ConvNd))]


def models_of(pipe) -> list:
    return [getattr(pipe, name) for name in COMPONENTS if getattr(pipe, name, None) is not None]


@contextmanager
def installed(pipe, check: Callable[[], None] | None, models: Iterable | None = None) -> Iterator[int]:
    """Within the block, `check()` runs before every cancel point of the pipe's UNet and VAE (or of `models`);
    it raises to stop the run. Yields how many points were hooked; every hook is removed on the way out."""
    if check is None:
        yield 0
        return

    pace = cuda_pacer()

    def hook(_module, _args) -> None:
        check()
        if pace is not None:
            pace()

    handles = [module.register_forward_pre_hook(hook)
               for model in (models_of(pipe) if models is None else models) for module in points(model)]
    try:
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()
