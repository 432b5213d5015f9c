"""Exact lower-memory decode of the Wan VAE (AutoencoderKLWan): frame sub-chunks after the temporal upsampling.

diffusers' AutoencoderKLWan._decode runs its decoder one latent frame at a time, a feature cache carrying each
causal conv's last two input frames to the next call. But inside one call the temporal upsampling turns that
latent frame into 4 frames (1 for the first), and the top-resolution up-blocks and the head run them together:
at 1280x704 that is 4 frames of 256-512 channels at 352x640, the decode's peak. Here those blocks (every
up-block after the last temporal upsample, then the head) run over 1-frame sub-chunks, the feature-cache index
reset to the same slot before each, so each conv reads and updates its own cache exactly as between latent
frames. This is exact: a causal conv of temporal kernel 3 needs the two frames before the chunk, which are
what the cache holds; everything else there is per frame (RMS norms over channels, 2D upsampling, 1x1 convs,
the DupUp3D shortcut with factor_t 1).

`decode_latents(vae, z, to_host=True)` also moves each decoded latent frame's pixels to the CPU as soon as
they are made, so the decoded video never sits whole on the device (the unpatchify and clamp run on the host;
both are permutations or elementwise, the same values).

The code follows diffusers 0.42's WanDecoder3d.forward and AutoencoderKLWan._decode line by line: it checks
the version, the classes, the source of every function whose behaviour it relies on, and the structure of the
chunked blocks, and refuses (WanVaeDecodeUnsupported) otherwise. The chunked forward is installed on the
decoder instance only while decode_latents runs (`chunked_decoder`), so hooks on vae.decoder still fire once
per latent frame. torch and diffusers are imported inside functions.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
from typing import Callable, Iterator

from i2v.core.errors import I2VError

SUPPORTED_DIFFUSERS = "0.42."
STATE_ATTRIBUTE = "_i2v_chunked_decoder"
# sha256 of inspect.getsource() of what the chunked decode re-implements or relies on (diffusers 0.42.1)
FOLLOWED_SOURCES = {
    "WanDecoder3d.forward": "927efe06256e3b6dd2d7794945e000cec1cd22ccafb8122a569a916991264568",
    "AutoencoderKLWan._decode": "7c6f228efce72e2294c063221a45723f9f8eaea7e75b13396adf0bef98ffe610",
    "WanResidualUpBlock.forward": "3cb1aa9e7628a7ed842a83712d996487065633aaf803c9ae2dbc0ac671102f1f",
    "WanUpBlock.forward": "5252c9acb3d2f373343694e0edd44b5a877fadd05780ae39ac1d5bb5223f09ed",
    "WanResidualBlock.forward": "82e9104df2acf11ae16c91b6f61d479a3bff498e863a5fedc855c33f79f16007",
    "WanCausalConv3d.forward": "afffb99acd515ba2c94ce5b3e4862141effa2236ce8e87a45fae67ca00a2cc29",
    "WanResample.forward": "3c0b8933703e5d76bb6c6fce24b418af9a825c7236872ee2d36e488c0eb5bc5b",
    "DupUp3D.forward": "a700e116fb631ba0f1401a90cfd241fe676f247ce21a585b025302321ba751d5",
    "WanRMS_norm.forward": "fc44101b65138738706ef4e60103556e615ee77152a633d198ffe671a8de9657",
    "unpatchify": "64bc52cca0e92236a093367ad9a9a2376761239d32869704d6f872f7dc981265",
}
FOLLOWED_CACHE_T = 2                 # frames each causal conv's cache keeps (the module's CACHE_T)
_ABSENT = object()


class WanVaeDecodeUnsupported(I2VError, RuntimeError):
    """The installed diffusers or the VAE's structure is not what the chunked decode was written for."""


def _source_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def _followed_functions(wan) -> dict[str, Callable]:
    return {
        "WanDecoder3d.forward": wan.WanDecoder3d.forward,
        "AutoencoderKLWan._decode": wan.AutoencoderKLWan._decode,
        "WanResidualUpBlock.forward": wan.WanResidualUpBlock.forward,
        "WanUpBlock.forward": wan.WanUpBlock.forward,
        "WanResidualBlock.forward": wan.WanResidualBlock.forward,
        "WanCausalConv3d.forward": wan.WanCausalConv3d.forward,
        "WanResample.forward": wan.WanResample.forward,
        "DupUp3D.forward": wan.DupUp3D.forward,
        "WanRMS_norm.forward": wan.WanRMS_norm.forward,
        "unpatchify": wan.unpatchify,
    }


# ---------------------------------------------------------------------------------------------------------
# what is supported
# ---------------------------------------------------------------------------------------------------------
def check_supported(vae) -> int:
    """The number of up-blocks that run whole (up to and including the last temporal upsample), after checking
    the installed diffusers and this VAE are exactly what the chunked decode follows."""
    import diffusers
    from diffusers.models.autoencoders import autoencoder_kl_wan as wan

    if not diffusers.__version__.startswith(SUPPORTED_DIFFUSERS):
        raise WanVaeDecodeUnsupported("chunk_diffusers_version", what="chunked Wan VAE decode",
                                      supported=SUPPORTED_DIFFUSERS, installed=diffusers.__version__)
    for name, function in _followed_functions(wan).items():
        if _source_hash(function) != FOLLOWED_SOURCES[name]:
            raise WanVaeDecodeUnsupported("chunk_source_differs", name=name, what="decode")
    if wan.CACHE_T != FOLLOWED_CACHE_T:
        raise WanVaeDecodeUnsupported("chunk_vae_cache", cached=wan.CACHE_T, expected=FOLLOWED_CACHE_T)
    if not isinstance(vae, wan.AutoencoderKLWan):
        raise WanVaeDecodeUnsupported("chunk_expected_class", expected="an AutoencoderKLWan", got=type(vae).__name__)
    decoder = vae.decoder
    if type(decoder) is not wan.WanDecoder3d:
        raise WanVaeDecodeUnsupported("chunk_expected_class", expected="a WanDecoder3d decoder",
                                      got=type(decoder).__name__)
    blocks = list(decoder.up_blocks)
    problems = [f"up_blocks[{i}] is a {type(b).__name__}" for i, b in enumerate(blocks)
                if type(b) not in (wan.WanResidualUpBlock, wan.WanUpBlock)]
    if problems:
        raise WanVaeDecodeUnsupported("chunk_structure", what="Wan decoder", follows="decode",
                                      problems=", ".join(problems))
    temporal = [i for i, block in enumerate(blocks) if _upsamples_in_time(block, wan)]
    if not temporal:
        raise WanVaeDecodeUnsupported("chunk_no_temporal_upsampling")
    whole = temporal[-1] + 1
    for i, block in enumerate(blocks[whole:], start=whole):
        problems += _chunk_problems(f"up_blocks[{i}]", block, wan)
    for name in ("norm_out", "conv_out"):
        problems += _chunk_problems(name, getattr(decoder, name), wan)
    if type(decoder.norm_out) is not wan.WanRMS_norm or decoder.norm_out.channel_first is not True:
        problems.append("norm_out is not a channel-first WanRMS_norm")
    if type(decoder.conv_out) is not wan.WanCausalConv3d:
        problems.append("conv_out is not a WanCausalConv3d")
    if problems:
        raise WanVaeDecodeUnsupported("chunk_structure", what="Wan decoder", follows="decode",
                                      problems=", ".join(problems))
    return whole


def _upsamples_in_time(block, wan) -> bool:
    if type(block) is wan.WanResidualUpBlock:
        resample = block.upsampler
        shortcut = block.avg_shortcut
        return (resample is not None and resample.mode == "upsample3d") or (
            shortcut is not None and shortcut.factor_t != 1)
    resample = block.upsamplers[0] if block.upsamplers is not None else None
    return resample is not None and resample.mode == "upsample3d"


def _chunk_problems(name: str, module, wan) -> list[str]:
    """Why `module` could not run over 1-frame sub-chunks with the same result (empty: it can): every layer
    is per frame except causal convs of temporal stride 1 whose cache (CACHE_T frames) covers their kernel."""
    import torch

    allowed = (wan.WanResidualUpBlock, wan.WanUpBlock, wan.WanResidualBlock, wan.WanCausalConv3d, wan.WanRMS_norm,
               wan.WanResample, wan.WanUpsample, wan.DupUp3D, torch.nn.ModuleList, torch.nn.Sequential,
               torch.nn.Conv2d, torch.nn.Identity, torch.nn.Dropout, torch.nn.SiLU)
    problems = []
    for path, sub in module.named_modules(prefix=name):
        if type(sub) not in allowed:
            problems.append(f"{path} is a {type(sub).__name__}")
        elif type(sub) is wan.WanResample and sub.mode not in ("upsample2d", "none"):
            problems.append(f"{path} resamples in time ({sub.mode})")
        elif type(sub) is wan.DupUp3D and sub.factor_t != 1:
            problems.append(f"{path} repeats frames (factor_t {sub.factor_t})")
        elif type(sub) is wan.WanRMS_norm and sub.channel_first is not True:
            problems.append(f"{path} normalises over another dimension than channels")
        elif type(sub) is wan.WanCausalConv3d:
            kernel_t, stride_t = sub.kernel_size[0], sub.stride[0]
            if stride_t != 1 or sub._padding[4] != kernel_t - 1 or kernel_t - 1 > FOLLOWED_CACHE_T:
                problems.append(f"{path} is not a causal conv of stride 1 and temporal kernel <= "
                                f"{FOLLOWED_CACHE_T + 1} (kernel {kernel_t}, stride {stride_t})")
        elif type(sub) is wan.WanResidualBlock and type(sub.nonlinearity) is not torch.nn.SiLU:
            problems.append(f"{path} uses {type(sub.nonlinearity).__name__}")
    return problems


# ---------------------------------------------------------------------------------------------------------
# the chunked decoder forward
# ---------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def chunked_decoder(vae) -> Iterator[None]:
    """vae.decoder's own forward replaced by the sub-chunked one while the block runs, beneath any hook on the
    decoder (diffusers' hook registry, e.g. group offload; accelerate's _old_forward), so those still run once per
    decoder call; the previous forward is put back afterwards."""
    whole = check_supported(vae)
    decoder = vae.decoder
    if getattr(decoder, STATE_ATTRIBUTE, None) is not None:      # already installed (a nested call)
        yield
        return
    holder, attribute = _forward_slot(decoder)
    previous = holder.__dict__.get(attribute, _ABSENT)
    original = previous if previous is not _ABSENT else type(decoder).forward.__get__(decoder)
    setattr(holder, attribute, _chunked_forward(decoder, original, whole))
    object.__setattr__(decoder, STATE_ATTRIBUTE, attribute)
    try:
        yield
    finally:
        object.__delattr__(decoder, STATE_ATTRIBUTE)
        if previous is _ABSENT:
            holder.__dict__.pop(attribute, None)
        else:
            setattr(holder, attribute, previous)


def _forward_slot(decoder) -> tuple[object, str]:
    """(object, attribute) that holds the decoder's own forward: the innermost link of diffusers' hook registry
    (its first hook wraps the original forward, looked up at each call), accelerate's _old_forward, or forward."""
    registry = getattr(decoder, "_diffusers_hook", None)
    if registry is not None and getattr(registry, "hooks", None):
        innermost = registry._fn_refs[0]
        if innermost.original_forward is not None:
            raise WanVaeDecodeUnsupported("chunk_hook_replaces_forward", hook=repr(registry._hook_order[0]))
        return innermost, "forward"
    if hasattr(decoder, "_hf_hook") and hasattr(decoder, "_old_forward"):
        return decoder, "_old_forward"
    return decoder, "forward"


def _cached_conv(conv, x, feat_cache, feat_idx):
    """WanDecoder3d.forward's conv_in/conv_out step with a feature cache, verbatim."""
    import torch
    from diffusers.models.autoencoders.autoencoder_kl_wan import CACHE_T

    idx = feat_idx[0]
    cache_x = x[:, :, -CACHE_T:, :, :].clone()
    if cache_x.shape[2] < 2 and feat_cache[idx] is not None:
        # cache last frame of last two chunk
        cache_x = torch.cat([feat_cache[idx][:, :, -1, :, :].unsqueeze(2).to(cache_x.device), cache_x], dim=2)
    x = conv(x, feat_cache[idx])
    feat_cache[idx] = cache_x
    feat_idx[0] += 1
    return x


def _chunked_forward(decoder, original: Callable, whole: int) -> Callable:
    """WanDecoder3d.forward with the up-blocks after `whole` and the head run one frame at a time. Without a
    feature cache (the whole video in one call) there is nothing to carry between sub-chunks: the original."""

    def forward(x, feat_cache=None, feat_idx=[0], first_chunk=False):  # noqa: B006 (diffusers' signature)
        import torch

        if feat_cache is None:
            return original(x, feat_cache=feat_cache, feat_idx=feat_idx, first_chunk=first_chunk)
        ## conv1
        x = _cached_conv(decoder.conv_in, x, feat_cache, feat_idx)
        ## middle
        x = decoder.mid_block(x, feat_cache=feat_cache, feat_idx=feat_idx)
        ## upsamples, up to the last temporal one: whole
        for up_block in decoder.up_blocks[:whole]:
            x = up_block(x, feat_cache=feat_cache, feat_idx=feat_idx, first_chunk=first_chunk)
        ## the rest and the head: frame by frame, each sub-chunk from the same cache slot
        start = feat_idx[0]
        frames = []
        for t in range(x.shape[2]):
            feat_idx[0] = start
            h = x[:, :, t:t + 1]
            for up_block in decoder.up_blocks[whole:]:
                h = up_block(h, feat_cache=feat_cache, feat_idx=feat_idx, first_chunk=first_chunk)
            ## head
            h = decoder.norm_out(h)
            h = decoder.nonlinearity(h)
            frames.append(_cached_conv(decoder.conv_out, h, feat_cache, feat_idx))
            del h
        del x
        return frames[0] if len(frames) == 1 else torch.cat(frames, 2)

    return forward


# ---------------------------------------------------------------------------------------------------------
# the decode
# ---------------------------------------------------------------------------------------------------------
def decode_latents(vae, z, to_host: bool = False):
    """vae.decode(z).sample, with the chunked decoder; to_host: each latent frame's pixels go to the CPU as
    soon as they are decoded (the result is then a CPU tensor)."""
    return _decode(vae, z, _to_host if to_host else _keep)


def decode_on_device(vae, z) -> None:
    """What decode_latents(to_host=True) leaves on the device, for tracing on meta (which has no host to copy
    to): the same code, each latent frame's pixels released once made, as their copy to the host does."""
    _decode(vae, z, _release)


def _keep(chunk):
    return chunk


def _to_host(chunk):
    return chunk.to("cpu")


def _release(chunk):
    return None


def _decode(vae, z, move: Callable):
    """AutoencoderKLWan.decode (its accelerate offload hook, slicing, tiling) and _decode, line by line, with
    each decoder output passed through `move` and joined where `move` put it."""
    import torch
    from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

    check_supported(vae)
    hook = getattr(vae, "_hf_hook", None)
    if hook is not None and hasattr(hook, "pre_forward"):      # diffusers' apply_forward_hook on vae.decode
        hook.pre_forward(vae)
    with torch.no_grad(), chunked_decoder(vae):
        if vae.use_slicing and z.shape[0] > 1:
            parts = [_decode_one(vae, z_slice, move, unpatchify) for z_slice in z.split(1)]
            return None if parts[0] is None else torch.cat(parts)
        return _decode_one(vae, z, move, unpatchify)


def _decode_one(vae, z, move: Callable, unpatchify):
    import torch

    _, _, num_frame, height, width = z.shape
    tile_latent_min_height = vae.tile_sample_min_height // vae.spatial_compression_ratio
    tile_latent_min_width = vae.tile_sample_min_width // vae.spatial_compression_ratio
    if vae.use_tiling and (width > tile_latent_min_width or height > tile_latent_min_height):
        return move(vae.tiled_decode(z, return_dict=False)[0])     # its tiles run the chunked decoder too

    vae.clear_cache()
    x = vae.post_quant_conv(z)
    chunks = []
    for i in range(num_frame):
        vae._conv_idx = [0]
        out_ = vae.decoder(x[:, :, i:i + 1, :, :], feat_cache=vae._feat_map, feat_idx=vae._conv_idx,
                           first_chunk=(i == 0))
        chunks.append(move(out_))
        del out_
    del x
    vae.clear_cache()
    if chunks[0] is None:
        return None
    out = chunks[0] if len(chunks) == 1 else torch.cat(chunks, 2)
    del chunks
    if vae.config.patch_size is not None:
        out = unpatchify(out, patch_size=vae.config.patch_size)
    return torch.clamp(out, min=-1.0, max=1.0)
