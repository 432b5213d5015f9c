"""LTX-Video's VAE decode, exact and smaller: the same values with a fraction of the activation memory.

The LTX decoder sees every latent frame at once (it is not causal: no decode in frame chunks), and at its top
resolution one activation of a 121-frame 768x512 video is 0.76 GiB in bf16, while each RMSNorm makes float32
copies of its whole input. Two reversible wrappers, installed on the decoder's module instances only while a
decode runs (`installed`):

- every RMSNorm under the decoder runs over BAND frames at a time: it is applied to (batch, frames, height,
  width, channels) tensors and normalises each position on its own, so any split over frames is exact;
- every LTXVideoResnetBlock3d without noise injection runs over bands of BAND frames with HALO frames of real
  context on each side, keeping only the band: its convolutions reach 2 frames per side (kernel 3, causal or
  not) and everything else is per position, so the kept frames are the whole block's; at the video's ends
  the block pads exactly as it would for the whole video.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

BAND = 8           # frames per piece
HALO = 4           # context frames each side of a resnet band (two kernel-3 convolutions, causal: 2 x 2)
STATE_ATTRIBUTE = "_i2v_banded_decode"


def _banded_norm(original: Callable) -> Callable:
    def forward(hidden_states):
        import torch

        if hidden_states.ndim != 5 or hidden_states.shape[1] <= BAND:
            return original(hidden_states)
        out = None
        for start in range(0, hidden_states.shape[1], BAND):
            piece = original(hidden_states[:, start:start + BAND])
            if out is None:
                out = torch.empty(hidden_states.shape[:-1] + piece.shape[-1:], dtype=piece.dtype,
                                  device=piece.device)
            out[:, start:start + BAND] = piece
            del piece
        return out

    return forward


def _banded_resnet(original: Callable) -> Callable:
    def forward(inputs, temb=None, generator=None):
        import torch

        frames = inputs.shape[2]
        if frames <= BAND + 2 * HALO:
            return original(inputs, temb, generator)
        out = None
        for start in range(0, frames, BAND):
            end = min(start + BAND, frames)
            low, high = max(0, start - HALO), min(frames, end + HALO)
            piece = original(inputs[:, :, low:high], temb, generator)[:, :, start - low:start - low + end - start]
            if out is None:
                out = torch.empty((inputs.shape[0], piece.shape[1], frames) + tuple(piece.shape[3:]),
                                  dtype=piece.dtype, device=piece.device)
            out[:, :, start:end] = piece
            del piece
        return out

    return forward


def _targets(decoder):
    from diffusers.models.autoencoders.autoencoder_kl_ltx import LTXVideoResnetBlock3d
    from diffusers.models.normalization import RMSNorm

    for module in decoder.modules():
        if type(module) is RMSNorm:
            yield module, _banded_norm
        elif type(module) is LTXVideoResnetBlock3d and module.per_channel_scale1 is None:
            yield module, _banded_resnet


@contextmanager
def installed(vae):
    """The banded forwards on the decoder's norms and resnet blocks for the duration of the block."""
    if getattr(vae.decoder, STATE_ATTRIBUTE, False):
        yield
        return
    wrapped = []
    for module, make in _targets(vae.decoder):
        previous = module.__dict__.get("forward")
        module.forward = make(previous or type(module).forward.__get__(module))
        wrapped.append((module, previous))
    object.__setattr__(vae.decoder, STATE_ATTRIBUTE, True)
    try:
        yield
    finally:
        for module, previous in reversed(wrapped):
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous
        object.__delattr__(vae.decoder, STATE_ATTRIBUTE)


def decode(vae, latents, temb):
    """vae.decode(latents, temb) with the banded decoder: the same video."""
    with installed(vae):
        return vae.decode(latents, temb, return_dict=False)[0]
