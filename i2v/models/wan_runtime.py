"""The torch side of Wan 2.2 TI2V-5B: build (tiny or full size), phase modules, exact plan parts, call, decode.

diffusers' WanImageToVideoPipeline with expand_timesteps=True and no image encoder: the image is VAE-encoded
into the first latent frame, which keeps timestep 0 while the others are denoised. bf16 on CUDA, fp32 on CPU.
torch and diffusers are imported inside the functions: importing this module is cheap.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from i2v.models.decode_steps import counted_decoder, spatial_tiles

log = logging.getLogger(__name__)

DENOISER = "transformer"
TINY_SEED = 0
TINY_VOCAB = ("<pad>", "</s>", "<unk>")     # T5's special tokens and ids: pad 0, eos 1, unk 2; then 256 bytes
TINY_VOCAB_SIZE = len(TINY_VOCAB) + 256
TEXT_ENCODER_CPU_ATTRIBUTE = "_i2v_text_encoder_cpu"


def _full_size_vae() -> dict:
    from i2v.paths import configs_dir

    return json.loads((configs_dir() / "models" / "wan2.2-ti2v-5b" / "vae.json").read_text(encoding="utf-8"))


def tiny_configs() -> dict[str, dict]:
    """Constructor kwargs of the tiny model (fresh copies, plain data): the real classes and the real latent
    geometry (48 channels, x16 spatial with the VAE's 2x2 patchify, x4 temporal), tiny widths."""
    full_vae = _full_size_vae()
    return {
        "transformer": dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=48,
                            out_channels=48, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2,
                            cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None,
                            added_kv_proj_dim=None, rope_max_seq_len=1024, pos_embed_seq_len=None),
        "vae": dict(base_dim=8, decoder_base_dim=8, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                    attn_scales=[], temperal_downsample=[False, True, True], dropout=0.0,
                    latents_mean=list(full_vae["latents_mean"]), latents_std=list(full_vae["latents_std"]),
                    is_residual=True, in_channels=12, out_channels=12, patch_size=2, scale_factor_temporal=4,
                    scale_factor_spatial=16),
        "text_encoder": dict(vocab_size=TINY_VOCAB_SIZE, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                             num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=32,
                             relative_attention_max_distance=128, dropout_rate=0.0, layer_norm_epsilon=1e-6,
                             feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True,
                             scalable_attention=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                             tie_word_embeddings=False),
    }


def _tiny_tokenizer():
    """A byte-level tokenizer built offline (no merges): T5's pad/eos/unk, then one token per byte; '</s>'
    appended like T5Tokenizer's add_special_tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    byte_symbols = list(pre_tokenizers.ByteLevel.alphabet())
    byte_symbols.sort()
    vocab = {token: index for index, token in enumerate(TINY_VOCAB + tuple(byte_symbols))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                           special_tokens=[("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", model_max_length=512)
    if (len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id) != (TINY_VOCAB_SIZE, 0, 1):
        raise RuntimeError(f"tiny tokenizer: {len(tokenizer)} tokens, pad {tokenizer.pad_token_id}, "
                           f"eos {tokenizer.eos_token_id}")
    return tokenizer


def _cast(model, dtype) -> None:
    """The parameters in `dtype`, except those diffusers' from_pretrained keeps in float32 (buffers such as
    the rotary tables keep their precision, as they do when loading). transformers keeps its list only for fp16."""
    import torch
    from diffusers import ModelMixin

    if dtype == torch.float32:
        return
    keep = getattr(model, "_keep_in_fp32_modules", None) or ()
    if not isinstance(model, ModelMixin) and dtype != torch.float16:
        keep = ()
    for name, parameter in model.named_parameters():
        if not any(part in keep for part in name.split(".")):
            parameter.data = parameter.data.to(dtype)


def _build_tiny(dtype):
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from i2v.paths import configs_dir

    configs = tiny_configs()
    torch.manual_seed(TINY_SEED)
    transformer = WanTransformer3DModel(**{k: tuple(v) if k == "patch_size" else v
                                           for k, v in configs["transformer"].items()})
    vae = AutoencoderKLWan(**configs["vae"])
    text_encoder = UMT5EncoderModel(UMT5Config(**configs["text_encoder"]))
    scheduler_config = json.loads((configs_dir() / "models" / "wan2.2-ti2v-5b" / "scheduler.json").read_text())
    scheduler = UniPCMultistepScheduler.from_config(scheduler_config)
    for model in (transformer, vae, text_encoder):
        model.eval()
        _cast(model, dtype)
    return WanImageToVideoPipeline(tokenizer=_tiny_tokenizer(), text_encoder=text_encoder, vae=vae,
                                   scheduler=scheduler, transformer=transformer, expand_timesteps=True)


def build_pipeline(kind: str, source: str, dtype, variant=None):
    """kind "tiny": the tiny random model (deterministic, offline); otherwise from_pretrained(source).
    `variant` is accepted for the driver's sake and ignored: Wan ships one set of weights (no fp16 variant)."""
    if kind == "tiny":
        pipe = _build_tiny(dtype)
    else:
        from diffusers import WanImageToVideoPipeline

        pipe = WanImageToVideoPipeline.from_pretrained(source, torch_dtype=dtype)
        if not pipe.config.expand_timesteps or pipe.transformer.config.image_dim is not None:
            raise ValueError(f"{source} is not a TI2V model (expand_timesteps without an image encoder)")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def phase_modules(pipe) -> dict:
    """The module whose forward starts each phase. vae.encoder runs once for the one-frame image encode and
    vae.decoder once per latent frame (with VAE tiling: once per tile, per frame)."""
    return {"text_encode": pipe.text_encoder, "vae_encode": pipe.vae.encoder, "denoise": pipe.transformer,
            "decode": pipe.vae.decoder}


def denoise_calls_per_step(guidance_scale: float) -> int:
    """The pipeline runs the conditional then the unconditional pass as two calls when guidance is on."""
    return 2 if guidance_scale > 1 else 1


# ---------------------------------------------------------------------------------------------------------
# exact plan parts
# ---------------------------------------------------------------------------------------------------------
def apply_exact_parts(pipe, request) -> None:
    """The request's exact parts on this pipeline: token chunking and the text encoder on the CPU."""
    from i2v.models.wan_chunking import apply_token_chunking

    apply_token_chunking(pipe.transformer, int(request.chunk_tokens))
    set_text_encoder_cpu(pipe, bool(request.text_encoder_cpu))


def remove_exact_parts(pipe) -> None:
    """Both parts off (the driver does this while offload and casting hooks underneath change)."""
    from i2v.models.wan_chunking import apply_token_chunking

    apply_token_chunking(pipe.transformer, 0)
    set_text_encoder_cpu(pipe, False)


def text_encoder_on_cpu(pipe) -> bool:
    return getattr(pipe.text_encoder, TEXT_ENCODER_CPU_ATTRIBUTE, None) is not None


def set_text_encoder_cpu(pipe, on: bool) -> None:
    """Run the text encoder on the CPU (its inputs moved in, its outputs moved back to the caller's device),
    or put it back where the pipeline is. With model offload the offload hook's execution device becomes the
    CPU instead. Under sequential or group offload its weights already live in CPU memory and stream through
    the GPU a leaf at a time: the part is recorded and changes nothing (logged)."""
    import torch

    encoder = pipe.text_encoder
    state = getattr(encoder, TEXT_ENCODER_CPU_ATTRIBUTE, None)
    if on == (state is not None):
        return
    hook = getattr(encoder, "_hf_hook", None)
    if on:
        if _streams_weights(encoder):
            log.info("text_encoder_cpu under sequential/group offload: its weights already stream from the CPU")
            state = {"streamed": True}
        elif hook is not None and hasattr(hook, "execution_device"):     # model offload (accelerate CpuOffload)
            state = {"hook_device": hook.execution_device}
            hook.execution_device = torch.device("cpu")
        else:
            state = {"forward": encoder.__dict__.get("forward")}
            encoder.forward = _cpu_forward(state["forward"] or type(encoder).forward.__get__(encoder))
        if "streamed" not in state:
            encoder.to("cpu")
        object.__setattr__(encoder, TEXT_ENCODER_CPU_ATTRIBUTE, state)
        return
    object.__delattr__(encoder, TEXT_ENCODER_CPU_ATTRIBUTE)
    if "streamed" in state:
        return
    if "hook_device" in state:
        hook.execution_device = state["hook_device"]
        return                                                        # the offload hook moves it when it runs
    if state["forward"] is None:
        encoder.__dict__.pop("forward", None)
    else:
        encoder.forward = state["forward"]
    encoder.to(pipe.device)


def _streams_weights(encoder) -> bool:
    """Whether sequential (accelerate, per leaf) or group offload (diffusers hooks) manage its weights."""
    for module in encoder.modules():
        if module is not encoder and hasattr(module, "_hf_hook"):
            return True
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None and getattr(registry, "hooks", None):
            return True
    return False


def _cpu_forward(original: Callable) -> Callable:
    def forward(*args, **kwargs):
        import torch

        device = next((value.device for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor)),
                      None)
        output = original(*_to(args, "cpu"), **_to(kwargs, "cpu"))
        return output if device is None else _to(output, device)

    return forward


def _to(value: Any, device):
    """Tensors inside tuples, lists, dicts and transformers' ModelOutput moved to `device`."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):            # ModelOutput is an OrderedDict: update it in place, keep its class
        for key in list(value.keys()):
            value[key] = _to(value[key], device)
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_to(item, device) for item in value)
    return value


# ---------------------------------------------------------------------------------------------------------
# the call and the decode
# ---------------------------------------------------------------------------------------------------------
def call_kwargs(request, image, generator) -> dict:
    """Everything pipe(...) needs for the denoising loop; the latents come back for decode() (Wan takes no fps:
    24 fps is only the MP4's rate)."""
    from i2v.models.base import denoise_call_kwargs

    return denoise_call_kwargs(request, image, generator)


def decode(pipe, latents, request=None, listener=None, check=None):
    """uint8 frames (F, H, W, 3): the pipeline's own decode tail (un-normalise, vae.decode, postprocess),
    then (x * 255).round(). vae.decode runs as wan_vae_decode.decode_latents: the same values with its top
    blocks one pixel frame at a time, each latent frame's pixels sent to the CPU as they come (postprocess runs
    there, in the VAE's dtype as on the GPU). `check` and `listener` run before each vae.decoder call (one per
    latent frame; with VAE tiling one per tile and frame, and `total` counts those). `request` is the driver's
    (unused: the Wan VAE always decodes frame by frame, so there is no decode chunk to choose)."""
    import numpy as np
    import torch
    from diffusers.utils.torch_utils import get_module_execution_device

    from i2v.models.wan_vae_decode import decode_latents

    vae = pipe.vae
    total = latents.shape[2] * spatial_tiles(vae, latents.shape[3], latents.shape[4])   # per latent frame, per tile
    try:
        with counted_decoder(vae, total, listener, check), torch.no_grad():
            latents = latents.to(device=get_module_execution_device(vae), dtype=vae.dtype)
            latents_mean = (torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1)
                            .to(latents.device, latents.dtype))
            latents_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(
                latents.device, latents.dtype)
            latents = latents / latents_std + latents_mean
            video = decode_latents(vae, latents, to_host=True)
            frames = pipe.video_processor.postprocess_video(video, output_type="np")[0]
    finally:
        vae.clear_cache()          # a stop inside the decoder leaves its frame caches behind
    return (frames * 255).round().astype(np.uint8)


def preview_latents(pipe, args, kwargs, request):
    """The live preview's view of the transformer's input: [batch, 48, frames, h, w] -> [frames, 48, h, w]."""
    from i2v.preview import frames_first

    return frames_first(kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])
