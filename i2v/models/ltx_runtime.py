"""The torch side of LTX-Video: build (tiny or full size), phase modules, exact plan parts, call, decode.

diffusers' LTXImageToVideoPipeline: the image is VAE-encoded into the first latent frame (kept clean by a
per-token timestep of 0), the guidance halves go through the transformer as one batch-2 call, and the latents
come back packed (batch, tokens, 128) for decode(). bf16 on CUDA, fp32 on CPU. torch and diffusers are
imported inside the functions: importing this module is cheap.
"""
from __future__ import annotations

import json
import logging

from i2v.models.decode_steps import counted_decoder, spatial_tiles

log = logging.getLogger(__name__)

DENOISER = "transformer"
TINY_SEED = 0
MAX_SEQUENCE_LENGTH = 128            # the pipeline's default prompt length (T5 tokens)
DECODE_TIMESTEP = 0.0                # the pipeline's defaults: no decode noise
NAME = "ltx-video"


def _full_size(name: str) -> dict:
    from i2v.paths import configs_dir

    return json.loads((configs_dir() / "models" / NAME / f"{name}.json").read_text(encoding="utf-8"))


def tiny_configs() -> dict[str, dict]:
    """Constructor kwargs of the tiny model (fresh copies, plain data): the real classes and the real latent
    geometry (128 channels, x32 spatial with the VAE's 4x4 patchify, x8 temporal), tiny widths; its decoder has
    LTX-Video 0.9.1+'s layout (three residual up blocks, timestep-conditioned)."""
    from i2v.models.wan_runtime import TINY_VOCAB_SIZE     # the same offline byte-level T5 vocabulary

    return {
        "transformer": dict(in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=2,
                            attention_head_dim=24, cross_attention_dim=48, num_layers=2, caption_channels=32,
                            activation_fn="gelu-approximate", qk_norm="rms_norm_across_heads"),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=128, block_out_channels=[8, 16, 16, 16],
                    decoder_block_out_channels=[8, 16, 32], layers_per_block=[1, 1, 1, 1, 1],
                    decoder_layers_per_block=[1, 1, 1, 1], spatio_temporal_scaling=[True, True, True, False],
                    decoder_spatio_temporal_scaling=[True, True, True], decoder_inject_noise=[False] * 4,
                    upsample_residual=[True, True, True], upsample_factor=[2, 2, 2], timestep_conditioning=True,
                    patch_size=4, patch_size_t=1, encoder_causal=True, decoder_causal=False),
        "text_encoder": dict(vocab_size=TINY_VOCAB_SIZE, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                             num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=32,
                             relative_attention_max_distance=128, dropout_rate=0.0, layer_norm_epsilon=1e-6,
                             feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
                             decoder_start_token_id=0, tie_word_embeddings=False),
    }


def _build_tiny(dtype):
    import torch
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXImageToVideoPipeline,
                           LTXVideoTransformer3DModel)
    from transformers import T5Config, T5EncoderModel

    from i2v.models.wan_runtime import _cast, _tiny_tokenizer

    configs = tiny_configs()
    torch.manual_seed(TINY_SEED)
    transformer = LTXVideoTransformer3DModel(**configs["transformer"])
    vae = AutoencoderKLLTXVideo(**{k: tuple(v) if isinstance(v, list) else v for k, v in configs["vae"].items()})
    text_encoder = T5EncoderModel(T5Config(**configs["text_encoder"]))
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(_full_size("scheduler"))
    for model in (transformer, vae, text_encoder):
        model.eval()
        _cast(model, dtype)
    return LTXImageToVideoPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                                   tokenizer=_tiny_tokenizer(), transformer=transformer)


def build_pipeline(kind: str, source: str, dtype, variant=None):
    """kind "tiny": the tiny random model (deterministic, offline); otherwise from_pretrained(source).
    `variant` is ignored: the LTX-Video repos ship one set of weights."""
    if kind == "tiny":
        pipe = _build_tiny(dtype)
    else:
        from diffusers import LTXImageToVideoPipeline

        pipe = LTXImageToVideoPipeline.from_pretrained(source, torch_dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def phase_modules(pipe) -> dict:
    """The module whose forward starts each phase: vae.encoder runs once (the image), vae.decoder once per
    decode (per tile with VAE tiling)."""
    return {"text_encode": pipe.text_encoder, "vae_encode": pipe.vae.encoder, "denoise": pipe.transformer,
            "decode": pipe.vae.decoder}


def denoise_calls_per_step(guidance_scale: float) -> int:
    """One transformer call per step: with guidance both halves are one batch-2 call (CFG split makes them two
    inside the same call)."""
    return 1


# ---------------------------------------------------------------------------------------------------------
# exact plan parts
# ---------------------------------------------------------------------------------------------------------
def apply_exact_parts(pipe, request) -> None:
    """The request's exact parts: CFG split, token chunking, the text encoder on the CPU."""
    from i2v.models import ltx_parts
    from i2v.models.wan_runtime import set_text_encoder_cpu

    ltx_parts.set_cfg_split(pipe.transformer, bool(request.cfg_split))
    ltx_parts.set_token_chunking(pipe.transformer, int(request.chunk_tokens))
    set_text_encoder_cpu(pipe, bool(request.text_encoder_cpu))


def remove_exact_parts(pipe) -> None:
    from i2v.models import ltx_parts
    from i2v.models.wan_runtime import set_text_encoder_cpu

    ltx_parts.set_token_chunking(pipe.transformer, 0)
    ltx_parts.set_cfg_split(pipe.transformer, False)
    set_text_encoder_cpu(pipe, False)


def text_encoder_on_cpu(pipe) -> bool:
    from i2v.models.wan_runtime import text_encoder_on_cpu as on_cpu

    return on_cpu(pipe)


# ---------------------------------------------------------------------------------------------------------
# the call and the decode
# ---------------------------------------------------------------------------------------------------------
def call_kwargs(request, image, generator) -> dict:
    """Everything pipe(...) needs for the denoising loop; the frame rate conditions the model (the rotary
    positions' temporal scale), so it is the request's fps. The packed latents come back for decode()."""
    from i2v.models.base import denoise_call_kwargs

    return {**denoise_call_kwargs(request, image, generator), "frame_rate": request.fps,
            "max_sequence_length": MAX_SEQUENCE_LENGTH}


def latent_shape(pipe, frames: int, height: int, width: int) -> tuple[int, int, int]:
    return ((frames - 1) // pipe.vae_temporal_compression_ratio + 1, height // pipe.vae_spatial_compression_ratio,
            width // pipe.vae_spatial_compression_ratio)


def decode(pipe, latents, request=None, listener=None, check=None):
    """uint8 frames (F, H, W, 3): the pipeline's own decode tail (unpack, denormalise, vae.decode at the decode
    timestep, postprocess), then (x * 255).round(). The decoder sees every frame at once (it is not causal:
    no exact decode in frame chunks); its norms and resnet blocks run in bands of frames (ltx_vae_decode.py:
    the same values, a fraction of the memory). `check` and `listener` run before each vae.decoder call (one; with VAE
    tiling one per tile, and `total` counts those). `request` gives the latent grid of the packed latents."""
    import numpy as np
    import torch
    from diffusers.utils.torch_utils import get_module_execution_device

    from i2v.models import ltx_vae_decode

    vae = pipe.vae
    if latents.ndim == 3:
        frames, height, width = latent_shape(pipe, request.num_frames, request.height, request.width)
        latents = pipe._unpack_latents(latents, frames, height, width, pipe.transformer_spatial_patch_size,
                                       pipe.transformer_temporal_patch_size)
    total = spatial_tiles(vae, latents.shape[3], latents.shape[4])     # one decoder call, per tile
    with counted_decoder(vae, total, listener, check), torch.no_grad():
        device = get_module_execution_device(vae)
        latents = pipe._denormalize_latents(latents.to(device), vae.latents_mean, vae.latents_std,
                                            vae.config.scaling_factor).to(vae.dtype)
        timestep = None
        if vae.config.timestep_conditioning:      # noise scale = decode timestep = 0: the latents unchanged
            timestep = torch.tensor([DECODE_TIMESTEP] * latents.shape[0], device=device, dtype=latents.dtype)
        video = ltx_vae_decode.decode(vae, latents, timestep)     # vae.decode's values, banded
        frames = pipe.video_processor.postprocess_video(video.cpu(), output_type="np")[0]
    return (frames * 255).round().astype(np.uint8)


def preview_latents(pipe, args, kwargs, request):
    """The live preview's view of the transformer's input: packed tokens [batch, tokens, 128] unpacked as
    decode() does -> [frames, 128, h, w]."""
    from i2v.preview import frames_first

    tokens = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
    frames, height, width = latent_shape(pipe, request.num_frames, request.height, request.width)
    return frames_first(pipe._unpack_latents(tokens[:1], frames, height, width, pipe.transformer_spatial_patch_size,
                                             pipe.transformer_temporal_patch_size))
