"""The torch side of I2VGen-XL: build (real weights or the tiny model), the modules whose calls mark the
phases, the exact UNet wrappers (i2v.chunking), the pipeline call, and our own chunked decode."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

DENOISER = "unet"


def tiny_configs() -> dict[str, dict]:
    from i2v.tiny_model import tiny_configs as configs

    return configs()


def build_pipeline(kind: str, source: str, dtype, variant: str | None = None):
    """kind "tiny": the tiny random model; otherwise from_pretrained (the fp16 variant on CUDA)."""
    import torch
    from diffusers import I2VGenXLPipeline

    if kind == "tiny":
        from i2v.tiny_model import build_tiny_components

        pipe = I2VGenXLPipeline(**build_tiny_components())
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    kwargs = {"torch_dtype": dtype}
    if variant:
        kwargs["variant"] = variant
    return I2VGenXLPipeline.from_pretrained(source, **kwargs)


def compatibility_fixes(pipe) -> list[tuple[str, str]]:
    """transformers 5 dropped CLIPTextModel.text_model, which the pipeline's clip_skip path uses (docs/facts.md).
    Returns (name, detail) of each fix applied."""
    encoder = pipe.text_encoder
    if hasattr(encoder, "text_model"):
        return []
    object.__setattr__(encoder, "text_model", encoder)  # non-registering alias: state dict unchanged
    return [("text encoder compatibility", "aliased text_encoder.text_model for transformers 5")]


def phase_modules(pipe) -> dict:
    """The modules whose forward marks a phase (one UNet call per step: CFG is batched or split in ours)."""
    return {"text_encode": pipe.text_encoder, "image_encode": pipe.image_encoder, "denoise": pipe.unet}


def denoise_calls_per_step(guidance_scale: float) -> int:
    return 1            # with CFG split our wrapper runs the two halves inside one hooked UNet call


def apply_exact_parts(pipe, request) -> None:
    """CFG split and the chunked UNet (i2v.chunking), installed over whatever hooks offload put underneath."""
    from i2v.chunking import apply_unet_plan

    apply_unet_plan(pipe.unet, request.cfg_split, request.chunk_tokens)


def remove_exact_parts(pipe) -> None:
    from i2v.chunking import apply_unet_plan

    apply_unet_plan(pipe.unet, False, 0)


def call_kwargs(request, image, generator) -> dict:
    from i2v.models.base import denoise_call_kwargs

    return {**denoise_call_kwargs(request, image, generator), "target_fps": request.fps}   # fps conditions motion


def decode(pipe, latents, request, listener=None, check=None):
    """Decode latents chunk by chunk (one 'decode' event per chunk) into uint8 frames (F, H, W, 3); `check`
    runs inside the VAE (i2v.cancel_points)."""
    import numpy as np
    import torch

    from i2v import cancel_points

    num_frames = latents.shape[2]
    chunk = max(1, request.decode_chunk_size)
    total_chunks = -(-num_frames // chunk)
    pieces = []
    with torch.no_grad(), cancel_points.installed(pipe, check, models=[pipe.vae]):
        for index, start in enumerate(range(0, num_frames, chunk), start=1):
            if listener is not None:
                listener("decode", index, total_chunks)
            part = latents[:, :, start:start + chunk]
            pieces.append(pipe.decode_latents(part, decode_chunk_size=chunk))
        video = torch.cat(pieces, dim=2)
        frames = pipe.video_processor.postprocess_video(video=video, output_type="np")[0]
    return (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)



def set_vae_tiling(pipe, on: bool, tile_sample_size: int) -> None:
    """VAE tiling at the tile size the memory profile was traced with (lossy: seams are blended)."""
    if on:
        pipe.vae.enable_tiling()
        pipe.vae.tile_sample_min_size = tile_sample_size
        pipe.vae.tile_latent_min_size = tile_sample_size // 8
    else:
        pipe.vae.disable_tiling()


def preview_latents(pipe, args, kwargs, request):
    """The live preview's view of the UNet's input: [batch, 4, frames, h, w] -> [frames, 4, h, w]."""
    from i2v.preview import frames_first

    return frames_first(args[0] if args else kwargs["sample"])
