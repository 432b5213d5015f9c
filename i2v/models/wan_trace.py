"""Trace the memory profile of Wan 2.2 TI2V-5B (diffusers WanImageToVideoPipeline, expand_timesteps) on meta.

Same method and table format as i2v/profile.py (I2VGen-XL): each component is built from its config on the meta
device and one phase at a time runs under the live-storage tracker (`trace_peak`). What differs is what the
Wan pipeline runs (docs/models/wan.md says where each figure comes from):
- text_encode: UMT5-XXL on 512 tokens, batch 1 (prompt and negative prompt are two calls);
- image_encode: none (this model has no image encoder): one point of 0 bytes;
- vae_encode: the first frame only, (1, 3, 1, H, W) (expand_timesteps: no zero frames are appended);
- denoise_*: ONE transformer call at batch 1 (cond and uncond are separate calls), per-token timesteps;
- decode: the runtime's decode of every latent frame (i2v/models/wan_vae_decode.py: the VAE decodes frame by
  frame with a feature cache, its top blocks one pixel frame at a time, each latent frame's pixels sent to the
  host); the frames column is the pixel frame count. decode_tiled: the same with vae.enable_tiling().
torch, diffusers and transformers are imported inside functions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from i2v.trace_tools import TEXT_TRANSFORMER_VAE, TRACE_METHOD, text_transformer_vae_section

FAMILY = "wan2.2-ti2v-5b"
COMPONENTS = TEXT_TRANSFORMER_VAE
DTYPES = ("bf16", "fp32")            # bf16 on CUDA, fp32 for CPU runs
TEXT_TOKENS = 512                     # the pipeline pads every prompt to max_sequence_length=512
VAE_SCALE_FACTOR = 16                 # pixels per latent pixel (Wan 2.2 VAE: 8x down and a 2x2 patchify)
TEMPORAL_SCALE_FACTOR = 4             # pixel frames per latent frame (after the first)
SIZE_MULTIPLE = 32                    # VAE factor x transformer patch (2): the pipeline rounds sizes down to it
VAE_TILE_SAMPLE_SIZE = 256            # AutoencoderKLWan's tile_sample_min_height/width with enable_tiling()

# Grid: activations are near linear in latent tokens (fused attention), and tokens follow frames x pixels.
GRID_SIZES = ((480, 480), (832, 480), (704, 704), (1280, 704))
GRID_FRAMES = (17, 49, 81, 121)
# Exact token chunking (i2v/models/wan_chunking.py) at these query-token budgets. 1280x704x121 is 27280 tokens.
CHUNK_BUDGETS = (2048, 8192, 16384)
CHUNKED_POINTS = ((480, 480, 17), (832, 480, 81), (704, 704, 81), (1280, 704, 121))
# Tiled decode keeps every decoded tile of the whole video until the blend, so its peak is linear in frames
# (core/memory.py extrapolates along the last segment); each tile decodes frame by frame, which makes this
# the slowest trace (about 0.15 s per tile and latent frame): two frame counts per size.
TILED_FRAMES = (17, 49)
# A small model (the tiny one): a small grid keeps the trace to seconds; no chunked traces (the plain trace
# is an upper bound of a chunked plan, core/memory.py).
SMALL_GRID = dict(sizes=((256, 256), (512, 512)), frames_grid=(5, 17), budgets=(), chunked_points=(),
                  tiled_frames=(5, 17))
METHOD = (f"{TRACE_METHOD}; "
          "denoise = one batch-1 transformer call (the pipeline runs cond and uncond separately)")


# ---------------------------------------------------------------- the components on meta
@dataclass
class ThreePartMetaModel:
    """A text_encoder -> transformer -> vae model's components (Wan here, LTX-Video in ltx_trace.py)."""
    dtype: str
    transformer: Any
    vae: Any
    text_encoder: Any

    def components(self) -> dict[str, Any]:
        return {"text_encoder": self.text_encoder, "transformer": self.transformer, "vae": self.vae}


WanMetaModel = ThreePartMetaModel


def three_part_meta_model(dtype: str, transformer, vae, text_config_class, text_model_class,
                          text_config: dict) -> ThreePartMetaModel:
    """The model of these components (built under the caller's torch.device) with a transformers text encoder
    from its config dict (SDPA attention, as from_pretrained picks), each cast as from_pretrained(torch_dtype)
    leaves it and in eval mode."""
    text_cfg = text_config_class(**{k: v for k, v in _clean(text_config).items()
                                    if k not in ("torch_dtype", "dtype", "architectures", "model_type")})
    text_cfg._attn_implementation = "sdpa"
    model = ThreePartMetaModel(dtype, transformer, vae, text_model_class(text_cfg))
    for component in model.components().values():
        cast_like_from_pretrained(component, dtype)
        component.eval()
    return model


def torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def _clean(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def build_meta_model(dtype: str, configs: dict[str, dict], device: str = "meta") -> WanMetaModel:
    """The three components from `configs` (name -> config dict, as in a diffusers folder's */config.json) on
    the meta device (or, random, on a real one), in the given compute dtype."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device(device):
        return three_part_meta_model(dtype, WanTransformer3DModel.from_config(_clean(configs["transformer"])),
                                     AutoencoderKLWan.from_config(_clean(configs["vae"])), UMT5Config,
                                     UMT5EncoderModel, configs["text_encoder"])


def cast_like_from_pretrained(module, dtype: str) -> None:
    """The dtypes diffusers' from_pretrained(torch_dtype=...) leaves: parameters named by the class's
    `_keep_in_fp32_modules` stay float32 (the Wan transformer: rope, time_embedder, scale_shift_table,
    norm1-3), as do buffers not in the checkpoint (the rotary tables); the rest takes the compute dtype.
    These fp32 modules make the per-token modulation float32, which the trace must see."""
    import torch

    target = torch_dtype(dtype)
    keep = getattr(module, "_keep_in_fp32_modules", None) or []
    if target == torch.float32 or not keep or not hasattr(module, "register_to_config"):
        module.to(target)        # transformers' UMT5 keeps its "wo" in fp32 only for fp16, not bf16
        return
    non_persistent = {f"{name}.{buffer}" if name else buffer
                      for name, sub in module.named_modules() for buffer in sub._non_persistent_buffers_set}
    for name, param in module.named_parameters():
        param.data = param.data.to(torch.float32 if any(k in name.split(".") for k in keep) else target)
    for name, sub in module.named_modules():
        for buffer_name, buffer in list(sub._buffers.items()):
            full = f"{name}.{buffer_name}" if name else buffer_name
            if buffer is not None and buffer.is_floating_point() and full not in non_persistent:
                keep_it = any(k in full.split(".") for k in keep)
                sub._buffers[buffer_name] = buffer.to(torch.float32 if keep_it else target)


def transformer_params(configs: dict[str, dict]) -> int:
    """Parameters of the transformer these configs describe (counted on meta: no memory)."""
    import torch
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        transformer = WanTransformer3DModel.from_config(_clean(configs["transformer"]))
    return sum(p.numel() for p in transformer.parameters())


# ---------------------------------------------------------------- one phase each
def _zeros(shape, like, dtype=None):
    import torch

    return torch.zeros(shape, dtype=dtype or like.dtype, device=like.device)


def latent_shape(width: int, height: int, frames: int) -> tuple[int, int, int]:
    """(latent frames, latent height, latent width) of a pixel request (the pipeline's prepare_latents)."""
    return (frames - 1) // TEMPORAL_SCALE_FACTOR + 1, height // VAE_SCALE_FACTOR, width // VAE_SCALE_FACTOR


def tokens(width: int, height: int, frames: int, patch: tuple[int, int, int] = (1, 2, 2)) -> int:
    """Transformer sequence length of one video: latent frames x latent pixels / patch."""
    f, h, w = latent_shape(width, height, frames)
    return (f // patch[0]) * (h // patch[1]) * (w // patch[2])


def trace_text_encode(model: WanMetaModel, peak_fn=None) -> int:
    """UMT5 on one prompt padded to 512 tokens. The pipeline also passes the padding mask; on meta its
    all-ones check cannot run (no values), so none is passed: the mask it would build is (1, 1, 512, 512) bool,
    256 KiB, and the position bias (1, heads, 512, 512) is made either way."""
    import torch
    from i2v.trace_tools import trace_peak

    encoder = model.text_encoder
    ids = torch.zeros((1, TEXT_TOKENS), dtype=torch.long, device=encoder.device)
    return (peak_fn or trace_peak)(encoder, lambda: encoder(ids).last_hidden_state, [ids])


def trace_vae_encode(model: WanMetaModel, width: int, height: int, peak_fn=None) -> int:
    """The first frame, (1, 3, 1, H, W): with expand_timesteps prepare_latents encodes only the image."""
    from i2v.trace_tools import trace_peak

    vae = model.vae
    image = _zeros((1, 3, 1, height, width), vae)
    return (peak_fn or trace_peak)(vae, lambda: vae.encode(image).latent_dist.mode(), [image])


def transformer_inputs(model: WanMetaModel, width: int, height: int, frames: int) -> dict:
    """One call's inputs as the pipeline's loop builds them: batch 1, per-token float32 timesteps."""
    import torch

    transformer = model.transformer
    config = transformer.config
    f, h, w = latent_shape(width, height, frames)
    hidden = _zeros((1, config.in_channels, f, h, w), transformer)
    seq = tokens(width, height, frames, tuple(config.patch_size))
    timestep = torch.full((1, seq), 999.0, dtype=torch.float32, device=transformer.device)
    text = _zeros((1, TEXT_TOKENS, config.text_dim), transformer)
    return dict(hidden_states=hidden, timestep=timestep, encoder_hidden_states=text, return_dict=False)


def trace_denoise(model: WanMetaModel, width: int, height: int, frames: int, chunk_tokens: int = 0,
                  flops: bool = False, peak_fn=None) -> tuple[int, int | None]:
    """(activation peak bytes, FLOPs or None) of one transformer call, optionally token-chunked."""
    from i2v.trace_tools import count_flops, trace_peak

    transformer = model.transformer
    kwargs = transformer_inputs(model, width, height, frames)
    run = lambda: transformer(**kwargs)[0]  # noqa: E731
    if chunk_tokens:
        from i2v.models.wan_chunking import apply_token_chunking

        apply_token_chunking(transformer, chunk_tokens)
    try:
        peak = (peak_fn or trace_peak)(transformer, run, kwargs.values())
        flop_count = count_flops(run) if flops else None
    finally:
        if chunk_tokens:
            apply_token_chunking(transformer, 0)
    return peak, flop_count


def trace_decode(model: WanMetaModel, width: int, height: int, frames: int, tiling: bool = False,
                 peak_fn=None) -> int:
    """Activation peak of the runtime's decode of all latent frames of a `frames`-frame video: the sub-chunked
    decoder with each latent frame's pixels sent to the host (i2v/models/wan_vae_decode.py; on meta they are
    released where the runtime copies them out). Tiled, the blended video is made whole before it leaves."""
    from i2v.models.wan_vae_decode import decode_on_device
    from i2v.trace_tools import trace_peak

    vae = model.vae
    f, h, w = latent_shape(width, height, frames)
    latents = _zeros((1, vae.config.z_dim, f, h, w), vae)
    saved = vae.use_tiling
    if tiling:
        vae.enable_tiling()
    try:
        return (peak_fn or trace_peak)(vae, lambda: decode_on_device(vae, latents), [latents])
    finally:
        vae.use_tiling = saved


def trace_decode_tables(model: WanMetaModel, sizes=GRID_SIZES, frames_grid=GRID_FRAMES, tiled_frames=TILED_FRAMES,
                        log: Callable[[str], None] = lambda _: None) -> dict[str, list]:
    """The decode and decode_tiled tables of one dtype (profile_dtype's, and retrace_decode's)."""
    from i2v.core.phases import DECODE, DECODE_TILED
    from i2v.core.units import GIB

    tables: dict[str, list] = {DECODE: [], DECODE_TILED: []}
    for w, h in sizes:
        for name, frame_counts, tiling in ((DECODE, frames_grid, False), (DECODE_TILED, tiled_frames, True)):
            for f in frame_counts:
                started = time.perf_counter()
                tables[name].append(_point(w, h, f, trace_decode(model, w, h, f, tiling=tiling)))
                log(f"{model.dtype} {name} {w}x{h}x{f}: {tables[name][-1]['bytes'] / GIB:.3f} GiB "
                    f"({time.perf_counter() - started:.1f} s)")
    return tables


def retrace_decode(profile: dict, configs: dict[str, dict], log: Callable[[str], None] = lambda _: None) -> dict:
    """`profile` with only its decode tables traced again (every dtype, on the profile's own grid): for a change
    of the decode alone, without the long transformer traces. Only the VAE is built (on meta)."""
    import torch
    from diffusers import AutoencoderKLWan

    grid = profile["grid"]
    sizes = [tuple(s) for s in grid["sizes"]]
    for dtype, section in profile["dtypes"].items():
        with torch.device("meta"):
            vae = AutoencoderKLWan.from_config(_clean(configs["vae"]))
        cast_like_from_pretrained(vae, dtype)
        vae.eval()
        model = WanMetaModel(dtype, transformer=None, vae=vae, text_encoder=None)
        section["phases"].update(trace_decode_tables(model, sizes, grid["frames"], grid["tiled_frames"], log))
        section["decoded_bytes_per_value"] = decoded_bytes_per_value(dtype)
    return profile


# ---------------------------------------------------------------- the table
def decoded_bytes_per_value(dtype: str) -> int:
    """GPU bytes per decoded RGB value left when decode ends: none. The runtime's decode
    (wan_vae_decode.decode_latents(to_host=True)) sends each latent frame's pixels to the host as it is decoded
    and the postprocessing runs there; one latent frame's pixels on the device are in the traced decode peak.
    (With the whole video kept on the device it would be 3 x the compute dtype's bytes: vae.decode's output
    and the two temporaries of VideoProcessor's denormalize.)"""
    return 0


def family_section(cuda_dtype: str = "bf16") -> dict:
    """What core/memory.py needs to know of this family beyond the tables (docs/models/wan.md says why): the pipeline
    makes two transformer calls a step (cond, then uncond), so there is no CFG split to choose."""
    return text_transformer_vae_section(FAMILY, denoise_calls_per_step=2, cfg_split_applies=False,
                                        decoded_bytes_per_value=decoded_bytes_per_value(cuda_dtype))


def _point(width, height, frames, peak, **extra) -> dict:
    return {"width": width, "height": height, "frames": frames, "bytes": int(peak), **extra}


def profile_dtype(model: WanMetaModel, sizes=GRID_SIZES, frames_grid=GRID_FRAMES, budgets=CHUNK_BUDGETS,
                  chunked_points=CHUNKED_POINTS, tiled_frames=TILED_FRAMES,
                  log: Callable[[str], None] = lambda _: None) -> dict:
    """All phases of one dtype: weights and activation points (the format of configs/memory_profile.json)."""
    from i2v.core.units import GIB
    from i2v.trace_tools import fp8_weight_bytes, weight_figures

    dtype = model.dtype
    section: dict[str, Any] = {
        "weights": {name: weight_figures(module) for name, module in model.components().items()},
        "phases": {},
        "decoded_bytes_per_value": decoded_bytes_per_value(dtype),
    }
    phases = section["phases"]
    phases["text_encode"] = [_point(0, 0, 1, trace_text_encode(model))]
    phases["image_encode"] = [_point(0, 0, 1, 0)]
    phases["vae_encode"] = [_point(w, h, 1, trace_vae_encode(model, w, h)) for w, h in sizes]
    plain = []
    for w, h in sizes:
        for f in frames_grid:
            started = time.perf_counter()
            peak, flops = trace_denoise(model, w, h, f, flops=True)
            plain.append(_point(w, h, f, peak, flops=flops))
            log(f"{dtype} denoise {w}x{h}x{f} ({tokens(w, h, f)} tokens): {peak / GIB:.3f} GiB "
                f"({time.perf_counter() - started:.1f} s)")
    # The pipeline runs cond and uncond as two batch-1 calls: every plain table holds the same figures.
    phases["denoise_cfg"] = plain
    phases["denoise_cfg_split"] = [dict(p) for p in plain]
    phases["denoise_nocfg"] = [{k: v for k, v in p.items() if k != "flops"} for p in plain]
    phases.update(trace_chunked(model, budgets, chunked_points, log))
    phases.update(trace_decode_tables(model, sizes, frames_grid, tiled_frames, log))
    if dtype != "fp32":   # fp8 storage is planned for the CUDA compute dtype only; casts the model: last
        section["weights"]["transformer"]["fp8_bytes"] = fp8_weight_bytes(model.transformer, dtype)
    return section


def trace_chunked(model: WanMetaModel, budgets, points, log: Callable[[str], None] = lambda _: None) -> dict:
    """denoise_cfg_chunk{N} and its _split twin (the same batch-1 call: the pipeline never batches CFG)."""
    from i2v.core.units import GIB

    tables: dict[str, list] = {}
    for budget in budgets:
        rows = []
        for w, h, f in points:
            started = time.perf_counter()
            peak = trace_denoise(model, w, h, f, chunk_tokens=budget)[0]
            rows.append(_point(w, h, f, peak))
            log(f"{model.dtype} denoise_cfg_chunk{budget} {w}x{h}x{f}: {peak / GIB:.3f} GiB "
                f"({time.perf_counter() - started:.1f} s)")
        tables[f"denoise_cfg_chunk{budget}"] = rows
        tables[f"denoise_cfg_chunk{budget}_split"] = [dict(r) for r in rows]
    return tables
