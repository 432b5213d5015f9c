"""Trace the memory profile of LTX-Video (diffusers LTXImageToVideoPipeline) on meta.

Same method and table format as i2v/profile.py and i2v/models/wan_trace.py; what the LTX pipeline runs:
- text_encode: T5-XXL on 128 tokens, batch 1 (prompt and negative prompt are two calls);
- image_encode: none (no image encoder): one point of 0 bytes;
- vae_encode: the image as one frame, (1, 3, 1, H, W);
- denoise_cfg: ONE transformer call at batch 2 (both guidance halves), per-token timesteps (the image's first
  latent frame keeps timestep 0); denoise_cfg_split and denoise_nocfg: batch 1; *_chunk{N}: with the exact
  token chunking of i2v/models/ltx_parts.py (feed-forward and cross-attention over N tokens at a time);
- decode: the runtime's decode of the whole latent video at once (the decoder is not causal), its norms and
  resnet blocks banded over frames (i2v/models/ltx_vae_decode.py); decode_tiled: with
  vae.enable_tiling() (512-pixel tiles, stride 448: the VAE's own). The frames column is the pixel frame count.
torch, diffusers and transformers are imported inside functions.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from i2v.trace_tools import TEXT_TRANSFORMER_VAE, TRACE_METHOD, text_transformer_vae_section

from i2v.models.wan_trace import (  # the shared meta-trace helpers
    ThreePartMetaModel, _clean, _point, cast_like_from_pretrained, three_part_meta_model,
)

FAMILY = "ltx-video"
COMPONENTS = TEXT_TRANSFORMER_VAE
DTYPES = ("bf16", "fp32")
TEXT_TOKENS = 128                     # the pipeline's max_sequence_length
VAE_SCALE_FACTOR = 32
TEMPORAL_SCALE_FACTOR = 8
SIZE_MULTIPLE = 32
VAE_TILE_SAMPLE_SIZE = 512            # AutoencoderKLLTXVideo's tile_sample_min_height/width
GRID_SIZES = ((480, 480), (768, 512), (1216, 704))
GRID_FRAMES = (25, 65, 121, 161)
CHUNK_BUDGETS = (2048, 8192)
CHUNKED_POINTS = ((768, 512, 121), (1216, 704, 161))
TILED_FRAMES = (25, 65)
SMALL_GRID = dict(sizes=((256, 256), (512, 512)), frames_grid=(9, 25), budgets=(), chunked_points=(),
                  tiled_frames=(9, 25))
METHOD = (f"{TRACE_METHOD}; "
          "denoise_cfg = one batch-2 transformer call (the pipeline batches both guidance halves)")


LtxMetaModel = ThreePartMetaModel


def _vae_kwargs(config: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in _clean(config).items()}


def build_meta_model(dtype: str, configs: dict[str, dict], device: str = "meta") -> LtxMetaModel:
    import torch
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    with torch.device(device):
        return three_part_meta_model(dtype, LTXVideoTransformer3DModel.from_config(_clean(configs["transformer"])),
                                     AutoencoderKLLTXVideo.from_config(_vae_kwargs(configs["vae"])), T5Config,
                                     T5EncoderModel, configs["text_encoder"])


def transformer_params(configs: dict[str, dict]) -> int:
    import torch
    from diffusers import LTXVideoTransformer3DModel

    with torch.device("meta"):
        transformer = LTXVideoTransformer3DModel.from_config(_clean(configs["transformer"]))
    return sum(p.numel() for p in transformer.parameters())


def latent_shape(width: int, height: int, frames: int) -> tuple[int, int, int]:
    return (frames - 1) // TEMPORAL_SCALE_FACTOR + 1, height // VAE_SCALE_FACTOR, width // VAE_SCALE_FACTOR


def tokens(width: int, height: int, frames: int) -> int:
    f, h, w = latent_shape(width, height, frames)
    return f * h * w


def _zeros(shape, like, dtype=None):
    import torch

    return torch.zeros(shape, dtype=dtype or like.dtype, device=like.device)


def trace_text_encode(model: LtxMetaModel) -> int:
    import torch
    from i2v.trace_tools import trace_peak

    encoder = model.text_encoder
    ids = torch.zeros((1, TEXT_TOKENS), dtype=torch.long, device=encoder.device)
    return trace_peak(encoder, lambda: encoder(ids).last_hidden_state, [ids])


def trace_vae_encode(model: LtxMetaModel, width: int, height: int) -> int:
    from i2v.trace_tools import trace_peak

    vae = model.vae
    image = _zeros((1, 3, 1, height, width), vae)
    return trace_peak(vae, lambda: vae.encode(image).latent_dist.mode(), [image])


def transformer_inputs(model: LtxMetaModel, width: int, height: int, frames: int, batch: int) -> dict:
    """One call's inputs as the pipeline's loop builds them: packed latents, per-token float timesteps."""
    import torch

    transformer = model.transformer
    config = transformer.config
    f, h, w = latent_shape(width, height, frames)
    seq = f * h * w
    return dict(hidden_states=_zeros((batch, seq, config.in_channels), transformer),
                encoder_hidden_states=_zeros((batch, TEXT_TOKENS, config.caption_channels), transformer),
                timestep=torch.full((batch, seq), 999.0, dtype=torch.float32, device=transformer.device),
                encoder_attention_mask=torch.ones((batch, TEXT_TOKENS), dtype=torch.long, device=transformer.device),
                num_frames=f, height=h, width=w, rope_interpolation_scale=(TEMPORAL_SCALE_FACTOR / 25, 32, 32),
                return_dict=False)


def trace_denoise(model: LtxMetaModel, width: int, height: int, frames: int, batch: int, chunk_tokens: int = 0,
                  flops: bool = False) -> tuple[int, int | None]:
    from i2v.models.ltx_parts import set_token_chunking
    from i2v.trace_tools import count_flops, trace_peak

    transformer = model.transformer
    kwargs = transformer_inputs(model, width, height, frames, batch)
    run = lambda: transformer(**kwargs)[0]  # noqa: E731
    set_token_chunking(transformer, chunk_tokens)
    try:
        peak = trace_peak(transformer, run, [v for v in kwargs.values() if hasattr(v, "untyped_storage")])
        flop_count = count_flops(run) if flops else None
    finally:
        set_token_chunking(transformer, 0)
    return peak, flop_count


def trace_decode(model: LtxMetaModel, width: int, height: int, frames: int, tiling: bool = False) -> int:
    import torch
    from i2v.models.ltx_vae_decode import decode as banded_decode
    from i2v.trace_tools import trace_peak

    vae = model.vae
    f, h, w = latent_shape(width, height, frames)
    latents = _zeros((1, vae.config.latent_channels, f, h, w), vae)
    temb = torch.zeros((1,), dtype=latents.dtype, device=latents.device) if vae.config.timestep_conditioning else None
    saved = vae.use_tiling
    vae.use_tiling = tiling
    try:
        return trace_peak(vae, lambda: banded_decode(vae, latents, temb), [latents])
    finally:
        vae.use_tiling = saved


def decoded_bytes_per_value(dtype: str) -> int:
    """The decoded video stays on the device in the VAE's dtype until the runtime copies it to the host."""
    return {"bf16": 2, "fp16": 2, "fp32": 4}[dtype]


def family_section(cuda_dtype: str = "bf16") -> dict:
    """What core/memory.py needs to know of this family beyond the tables (docs/models/ltx.md says why): one batch-2
    transformer call a step, which a CFG split halves."""
    return text_transformer_vae_section(FAMILY, denoise_calls_per_step=1, cfg_split_applies=True,
                                        decoded_bytes_per_value=decoded_bytes_per_value(cuda_dtype))


def profile_dtype(model: LtxMetaModel, sizes, frames_grid, budgets, chunked_points, tiled_frames,
                  log: Callable[[str], None]) -> dict:
    from i2v.core.phases import DECODE, DECODE_TILED
    from i2v.core.units import GIB
    from i2v.trace_tools import fp8_weight_bytes, weight_figures

    dtype = model.dtype
    section: dict[str, Any] = {
        "weights": {name: weight_figures(module) for name, module in model.components().items()},
        "phases": {}, "decoded_bytes_per_value": decoded_bytes_per_value(dtype),
    }
    phases = section["phases"]
    phases["text_encode"] = [_point(0, 0, 1, trace_text_encode(model))]
    phases["image_encode"] = [_point(0, 0, 1, 0)]
    phases["vae_encode"] = [_point(w, h, 1, trace_vae_encode(model, w, h)) for w, h in sizes]
    for name, batch in (("denoise_cfg", 2), ("denoise_cfg_split", 1)):
        rows = []
        for w, h in sizes:
            for f in frames_grid:
                started = time.perf_counter()
                peak, flops = trace_denoise(model, w, h, f, batch, flops=True)
                rows.append(_point(w, h, f, peak, flops=flops))
                log(f"{dtype} {name} {w}x{h}x{f} ({tokens(w, h, f)} tokens): {peak / GIB:.3f} GiB "
                    f"({time.perf_counter() - started:.1f} s)")
        phases[name] = rows
    phases["denoise_nocfg"] = [{k: v for k, v in p.items() if k != "flops"} for p in phases["denoise_cfg_split"]]
    for budget in budgets:
        for name, batch in ((f"denoise_cfg_chunk{budget}", 2), (f"denoise_cfg_chunk{budget}_split", 1)):
            phases[name] = [_point(w, h, f, trace_denoise(model, w, h, f, batch, chunk_tokens=budget)[0])
                            for w, h, f in chunked_points]
            log(f"{dtype} {name}: {[round(p['bytes'] / GIB, 3) for p in phases[name]]} GiB")
    phases[DECODE], phases[DECODE_TILED] = [], []
    for w, h in sizes:
        for name, counts, tiling in ((DECODE, frames_grid, False), (DECODE_TILED, tiled_frames, True)):
            for f in counts:
                phases[name].append(_point(w, h, f, trace_decode(model, w, h, f, tiling)))
                log(f"{dtype} {name} {w}x{h}x{f}: {phases[name][-1]['bytes'] / GIB:.3f} GiB")
    if dtype != "fp32":
        section["weights"]["transformer"]["fp8_bytes"] = fp8_weight_bytes(model.transformer, dtype)
    return section


def retrace_decode(profile: dict, configs: dict[str, dict], log: Callable[[str], None] = lambda _: None) -> dict:
    """`profile` with only its decode tables traced again (every dtype, its own grid): a change of the decode
    alone, without the transformer traces. Only the VAE is built (on meta)."""
    import torch
    from diffusers import AutoencoderKLLTXVideo

    from i2v.core.phases import DECODE, DECODE_TILED

    grid = profile["grid"]
    for dtype, section in profile["dtypes"].items():
        with torch.device("meta"):
            vae = AutoencoderKLLTXVideo.from_config(_vae_kwargs(configs["vae"]))
        cast_like_from_pretrained(vae, dtype)
        model = LtxMetaModel(dtype, None, vae.eval(), None)
        section["phases"][DECODE], section["phases"][DECODE_TILED] = [], []
        for w, h in grid["sizes"]:
            for name, counts, tiling in ((DECODE, grid["frames"], False), (DECODE_TILED, grid["tiled_frames"], True)):
                for f in counts:
                    section["phases"][name].append(_point(w, h, f, trace_decode(model, w, h, f, tiling)))
                    log(f"{dtype} {name} {w}x{h}x{f}: {section['phases'][name][-1]['bytes'] / 2 ** 30:.3f} GiB")
    return profile
