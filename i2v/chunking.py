"""Exact low-memory execution of the I2VGen-XL UNet: CFG split and per-module chunking.

The UNet's activations, not its weights, decide whether a video fits: one denoise step at 1024x1024x32 holds
about 20 GiB in fp16. Two facts make it possible to run it in pieces with the same result:
- *spatial* modules (ResnetBlock2D, the spatial Transformer2DModel, Downsample2D, Upsample2D) treat every
  frame of every sample on its own (their GroupNorms are per frame), so they can run on slices of the
  batch x frames dimension;
- *temporal* modules (TemporalConvLayer, TransformerTemporalModel) mix frames but never pixels (their convs are
  (3, 1, 1), their attention runs along frames per pixel), so they can run on bands of rows — except for their
  GroupNorms, which normalise over frames x pixels of each sample. Those statistics are gathered over the
  whole tensor first (in float32, band by band), then each band is normalised with them.
CFG split runs the unconditional and conditional halves of the batch as two UNet calls.

Wrappers are installed on module *instances* (no diffusers file is edited), remember what they replaced, and
come off with apply_unet_plan(unet, False, 0). A module that fits its budget in one chunk runs its original
forward. The wrappers read diffusers' module structure, so they are tied to the diffusers version below.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable
from i2v.core.errors import I2VError

SUPPORTED_DIFFUSERS = "0.42."        # the wrappers follow these modules' forward code line by line
PLAN_ATTRIBUTE = "_i2v_unet_plan"
PREVIOUS_FORWARD = "_i2v_previous_forward"
NO_PREVIOUS = object()
STATISTICS_DTYPE = "float32"


class ChunkingUnsupported(I2VError, RuntimeError):
    """The installed diffusers or the UNet's structure is not what the wrappers were written for."""


@dataclass
class UnetPlanState:
    """What is installed on one UNet, and how many extra chunks ran (tests read `chunks_run`)."""
    cfg_split: bool = False
    chunk_tokens: int = 0
    chunks_run: int = 0
    wrapped: list = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# installing and removing
# ---------------------------------------------------------------------------------------------------------
def unet_plan(unet) -> tuple[bool, int]:
    """(cfg_split, chunk_tokens) installed on the UNet."""
    state = getattr(unet, PLAN_ATTRIBUTE, None)
    return (state.cfg_split, state.chunk_tokens) if state else (False, 0)


def chunk_count(unet) -> int:
    """Extra chunks run since the plan was installed (0 when every module ran in one piece)."""
    state = getattr(unet, PLAN_ATTRIBUTE, None)
    return state.chunks_run if state else 0


def apply_unet_plan(unet, cfg_split: bool, chunk_tokens: int) -> None:
    """Install (or change, or remove with (False, 0)) the CFG split and the chunking on this UNet instance.
    chunk_tokens comes from a Plan, which checked it (i2v.core.plans)."""
    state = getattr(unet, PLAN_ATTRIBUTE, None)
    if state is not None and (state.cfg_split, state.chunk_tokens) == (cfg_split, chunk_tokens):
        return
    if state is not None:
        for module in reversed(state.wrapped):
            _unwrap(module)
        object.__delattr__(unet, PLAN_ATTRIBUTE)
    if not cfg_split and not chunk_tokens:
        return
    check_supported(unet)
    state = UnetPlanState(cfg_split, chunk_tokens)
    if chunk_tokens:
        for module in unet.modules():
            factory = _wrapper_for(module)
            if factory is not None:
                _wrap(module, factory(module, chunk_tokens, state))
                state.wrapped.append(module)
    if cfg_split:
        _wrap(unet, _cfg_split_forward(unet))
        state.wrapped.append(unet)
    object.__setattr__(unet, PLAN_ATTRIBUTE, state)


def check_supported(unet) -> None:
    import diffusers

    if not diffusers.__version__.startswith(SUPPORTED_DIFFUSERS):
        raise ChunkingUnsupported("chunk_diffusers_version", what="exact chunked UNet", supported=SUPPORTED_DIFFUSERS,
                                  installed=diffusers.__version__)
    from diffusers.models.resnet import TemporalConvLayer

    for module in unet.modules():
        if isinstance(module, TemporalConvLayer):
            layers = [type(layer).__name__ for stage in (module.conv1, module.conv2, module.conv3, module.conv4)
                      for layer in stage]
            expected = ["GroupNorm", "SiLU", "Conv3d"] + ["GroupNorm", "SiLU", "Dropout", "Conv3d"] * 3
            if layers != expected:
                raise ChunkingUnsupported("chunk_unet_layers", layers=layers, expected=expected)


def _wrap(module, forward: Callable) -> None:
    setattr(module, PREVIOUS_FORWARD, module.__dict__.get("forward", NO_PREVIOUS))
    module.forward = forward


def _unwrap(module) -> None:
    previous = module.__dict__.pop(PREVIOUS_FORWARD, NO_PREVIOUS)
    if previous is NO_PREVIOUS:
        module.__dict__.pop("forward", None)
    else:
        module.forward = previous


def _original(module) -> Callable:
    """The forward a wrapper is about to replace (called before _wrap): an instance forward that something
    else installed (diffusers' hooks do), or the class's."""
    return module.__dict__.get("forward") or type(module).forward.__get__(module)


def _wrapper_for(module):
    from diffusers.models.downsampling import Downsample2D
    from diffusers.models.resnet import ResnetBlock2D, TemporalConvLayer
    from diffusers.models.transformers.transformer_2d import Transformer2DModel
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
    from diffusers.models.upsampling import Upsample2D

    if isinstance(module, (ResnetBlock2D, Transformer2DModel, Downsample2D, Upsample2D)):
        return _per_frame_forward
    if isinstance(module, TemporalConvLayer):
        return _temporal_conv_forward
    if isinstance(module, TransformerTemporalModel):
        return _temporal_transformer_forward
    return None


# ---------------------------------------------------------------------------------------------------------
# CFG split
# ---------------------------------------------------------------------------------------------------------
def _cfg_split_forward(unet) -> Callable:
    """Batch 2 (unconditional, conditional) as two batch-1 calls of the original forward. Called inside
    unet.__call__, so forward hooks (our per-step progress hook) still fire once per step."""
    import torch

    original = _original(unet)

    def forward(sample, *args, **kwargs):
        batch = sample.shape[0]
        if batch < 2:
            return original(sample, *args, **kwargs)

        def half(value, index):
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch:
                return value[index:index + 1]
            return value

        return_dict = kwargs.get("return_dict", True)
        outputs = []
        for index in range(batch):
            result = original(half(sample, index), *[half(a, index) for a in args],
                              **{k: half(v, index) for k, v in kwargs.items()})
            outputs.append(result[0] if not return_dict else result.sample)
        merged = torch.cat(outputs, dim=0)
        if not return_dict:
            return (merged,)
        from diffusers.models.unets.unet_3d_condition import UNet3DConditionOutput

        return UNet3DConditionOutput(sample=merged)

    return forward


# ---------------------------------------------------------------------------------------------------------
# spatial modules: slices of the batch x frames dimension
# ---------------------------------------------------------------------------------------------------------
def frames_per_chunk(height: int, width: int, chunk_tokens: int) -> int:
    """Frames (of batch x frames) per slice so that a slice holds about chunk_tokens pixels."""
    return max(1, chunk_tokens // max(1, height * width))


def _per_frame_forward(module, chunk_tokens: int, state: UnetPlanState) -> Callable:
    """Run on slices of dim 0; every tensor argument with that leading size (temb, the per-frame text+image
    context) is sliced with it, so nothing broadcasts silently."""
    import torch

    original = _original(module)

    def forward(hidden_states, *args, **kwargs):
        total = hidden_states.shape[0]
        step = frames_per_chunk(hidden_states.shape[-2], hidden_states.shape[-1], chunk_tokens)
        if step >= total:
            return original(hidden_states, *args, **kwargs)
        return_dict = kwargs.get("return_dict", None)

        def part(value, start):
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == total:
                return value[start:start + step]
            return value

        out = None
        for start in range(0, total, step):
            piece = original(hidden_states[start:start + step], *[part(a, start) for a in args],
                             **{k: part(v, start) for k, v in kwargs.items()})
            tensor = piece if isinstance(piece, torch.Tensor) else piece[0]
            if out is None:
                out = tensor.new_empty((total,) + tuple(tensor.shape[1:]))
            out[start:start + tensor.shape[0]] = tensor
            del piece, tensor
        state.chunks_run += math.ceil(total / step) - 1
        if return_dict is False:
            return (out,)
        if return_dict is None:
            return out
        from diffusers.models.modeling_outputs import Transformer2DModelOutput

        return Transformer2DModelOutput(sample=out)

    return forward


# ---------------------------------------------------------------------------------------------------------
# temporal modules: bands of rows, GroupNorm statistics over the whole tensor
# ---------------------------------------------------------------------------------------------------------
def rows_per_band(frames: int, width: int, chunk_tokens: int) -> int:
    """Rows per band so that a band of one sample holds about chunk_tokens (frames x pixels)."""
    return max(1, chunk_tokens // max(1, frames * width))


def group_statistics(x, num_groups: int, rows: int):
    """Per sample and group: (mean, reciprocal std) over channels-in-group x frames x H x W of x (B, C, F, H, W),
    computed band by band in float32 (two passes: mean, then variance, as GroupNorm does)."""
    import torch

    batch, channels, _, height, _ = x.shape
    per_group = channels // num_groups
    count = x[0].numel() // num_groups
    sums = torch.zeros(batch, num_groups, dtype=torch.float32, device=x.device)
    for top in range(0, height, rows):
        band = x[:, :, :, top:top + rows].float()
        sums += band.reshape(batch, num_groups, per_group, -1).sum(dim=(2, 3))
        del band
    mean = sums / count
    squares = torch.zeros_like(sums)
    for top in range(0, height, rows):
        band = x[:, :, :, top:top + rows].float().reshape(batch, num_groups, per_group, -1)
        squares += (band - mean[:, :, None, None]).square().sum(dim=(2, 3))
        del band
    return mean, squares / count


def normalise(band, norm, mean, variance):
    """GroupNorm of one band (B, C, F, h, W) with statistics of the whole tensor; same dtype as the band."""
    import torch

    batch, channels = band.shape[:2]
    groups = norm.num_groups
    shape = (batch, groups, channels // groups) + tuple(band.shape[2:])
    scale = torch.rsqrt(variance + norm.eps)
    grouped = (band.float().reshape(shape) - mean.reshape(batch, groups, 1, 1, 1, 1)) \
        * scale.reshape(batch, groups, 1, 1, 1, 1)
    out = grouped.reshape(band.shape)
    if norm.affine:
        out = out * norm.weight.float().reshape(1, -1, 1, 1, 1) + norm.bias.float().reshape(1, -1, 1, 1, 1)
    return out.to(band.dtype)


def _temporal_conv_forward(module, chunk_tokens: int, state: UnetPlanState) -> Callable:
    """TemporalConvLayer stage by stage: each stage's GroupNorm needs the previous stage's whole output, then
    its SiLU and (3, 1, 1) conv run band by band into a preallocated tensor."""
    original = _original(module)
    stages = (module.conv1, module.conv2, module.conv3, module.conv4)

    def forward(hidden_states, num_frames: int = 1):
        batch = hidden_states.shape[0] // num_frames
        height, width = hidden_states.shape[-2:]
        rows = rows_per_band(num_frames, width, chunk_tokens)
        if rows >= height and batch == 1:
            return original(hidden_states, num_frames=num_frames)
        identity = hidden_states[None, :].reshape((-1, num_frames) + hidden_states.shape[1:]).permute(0, 2, 1, 3, 4)
        x = identity
        bands = [(b, top) for b in range(batch) for top in range(0, height, rows)]
        for index, stage in enumerate(stages):
            norm, conv = stage[0], stage[-1]
            mean, variance = group_statistics(x, norm.num_groups, rows)
            last = index == len(stages) - 1
            out = hidden_states.new_empty(hidden_states.shape) if last else \
                x.new_empty((batch, conv.out_channels, num_frames, height, width))
            for b, top in bands:
                band = x[b:b + 1, :, :, top:top + rows]
                y = normalise(band, norm, mean[b:b + 1], variance[b:b + 1])
                for layer in list(stage)[1:]:
                    y = layer(y)
                if last:   # identity + conv4, back to (B*F, C, H, W)
                    y = (identity[b:b + 1, :, :, top:top + rows] + y).permute(0, 2, 1, 3, 4)
                    out[b * num_frames:(b + 1) * num_frames, :, top:top + rows] = y[0]
                else:
                    out[b:b + 1, :, :, top:top + rows] = y
                del y, band
            x = out
        state.chunks_run += len(bands) - 1
        return x

    return forward


def _temporal_transformer_forward(module, chunk_tokens: int, state: UnetPlanState) -> Callable:
    """TransformerTemporalModel on bands of rows: the input GroupNorm with whole-tensor statistics, then
    proj_in, the blocks (attention along frames, per pixel), proj_out and the residual, band by band."""
    original = _original(module)

    def forward(hidden_states, encoder_hidden_states=None, timestep=None, class_labels=None, num_frames: int = 1,
                cross_attention_kwargs: dict[str, Any] | None = None, return_dict: bool = True):
        batch_frames, channels, height, width = hidden_states.shape
        batch = batch_frames // num_frames
        rows = rows_per_band(num_frames, width, chunk_tokens)
        if (rows >= height and batch == 1) or encoder_hidden_states is not None:
            return original(hidden_states, encoder_hidden_states=encoder_hidden_states, timestep=timestep,
                            class_labels=class_labels, num_frames=num_frames,
                            cross_attention_kwargs=cross_attention_kwargs, return_dict=return_dict)
        grid = hidden_states[None, :].reshape(batch, num_frames, channels, height, width).permute(0, 2, 1, 3, 4)
        mean, variance = group_statistics(grid, module.norm.num_groups, rows)
        out = hidden_states.new_empty(hidden_states.shape)
        bands = 0
        for b in range(batch):
            for top in range(0, height, rows):
                band = normalise(grid[b:b + 1, :, :, top:top + rows], module.norm, mean[b:b + 1], variance[b:b + 1])
                band_rows = band.shape[3]
                tokens = band.permute(0, 3, 4, 2, 1).reshape(band_rows * width, num_frames, channels)
                del band
                tokens = module.proj_in(tokens)
                for block in module.transformer_blocks:
                    tokens = block(tokens, encoder_hidden_states=None, timestep=timestep,
                                   cross_attention_kwargs=cross_attention_kwargs, class_labels=class_labels)
                tokens = module.proj_out(tokens)
                y = tokens.reshape(band_rows, width, num_frames, channels).permute(2, 3, 0, 1)
                rows_slice = slice(top, top + band_rows)
                frames_slice = slice(b * num_frames, (b + 1) * num_frames)
                out[frames_slice, :, rows_slice] = y + hidden_states[frames_slice, :, rows_slice]
                del tokens, y
                bands += 1
        state.chunks_run += bands - 1
        if not return_dict:
            return (out,)
        from diffusers.models.transformers.transformer_temporal import TransformerTemporalModelOutput

        return TransformerTemporalModelOutput(sample=out)

    return forward
