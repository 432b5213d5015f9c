"""A tiny, randomly initialised I2VGen-XL with the real topology, built offline.

The components are the real diffusers/transformers classes with small widths: a 4-level UNet and a 4-block VAE
(so the real x8 latent path), 2-layer CLIP encoders and a byte-level CLIP tokenizer written to a temp folder.
Its output is noise; it exists so everything can run without weights or network.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

TINY_SEED = 0
TINY_MODEL_ID = "tiny"


def _bytes_to_unicode() -> dict[int, str]:
    """The GPT-2/CLIP byte-to-symbol table (reversible, printable)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    symbols = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            symbols.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(s) for s in symbols)))


def write_byte_level_tokenizer_files(folder: Path) -> Path:
    """Write vocab.json + merges.txt of a merge-free byte-level CLIP vocabulary (docs/facts.md: from_pretrained only)."""
    symbols = list(_bytes_to_unicode().values())
    tokens = ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


# The four components' configs, plain data (no torch): build_tiny_components builds from these, and the memory
# model hashes and traces them (i2v/profiles.py, i2v/profile.py) so predictions describe the tiny model itself.
TINY_VOCAB_SIZE = 2 + 2 * 256          # <|startoftext|>, <|endoftext|>, each byte symbol alone and with </w>
TINY_PAD_TOKEN_ID = 1                   # CLIPTokenizer's pad token is <|endoftext|>


def tiny_configs() -> dict[str, dict]:
    """unet / vae / text_encoder / image_encoder constructor arguments of the tiny model (fresh copies)."""
    return {
        "unet": dict(sample_size=8, block_out_channels=[8, 8, 16, 16], layers_per_block=1, norm_num_groups=4,
                     cross_attention_dim=8, attention_head_dim=4),
        "vae": dict(block_out_channels=[8, 8, 16, 16], down_block_types=["DownEncoderBlock2D"] * 4,
                    up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4, layers_per_block=1,
                    norm_num_groups=4, sample_size=64, scaling_factor=0.18215),
        "text_encoder": dict(vocab_size=TINY_VOCAB_SIZE, hidden_size=8, intermediate_size=16, projection_dim=8,
                             num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                             pad_token_id=TINY_PAD_TOKEN_ID, bos_token_id=0, eos_token_id=1),
        "image_encoder": dict(hidden_size=8, intermediate_size=16, projection_dim=8, num_hidden_layers=2,
                              num_attention_heads=2, image_size=32, patch_size=8, num_channels=3),
    }


def build_tiny_components() -> dict:
    """Return the keyword arguments of I2VGenXLPipeline for a tiny random model (deterministic)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, I2VGenXLUNet
    from transformers import (
        CLIPImageProcessorPil,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from i2v.paths import model_config_dir

    configs = tiny_configs()
    torch.manual_seed(TINY_SEED)
    unet = I2VGenXLUNet(**{k: tuple(v) if isinstance(v, list) else v for k, v in configs["unet"].items()})
    vae = AutoencoderKL(**{k: tuple(v) if isinstance(v, list) else v for k, v in configs["vae"].items()})
    with tempfile.TemporaryDirectory(prefix="i2v-tiny-tok-") as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(str(write_byte_level_tokenizer_files(Path(tmp))), model_max_length=77)
    if (len(tokenizer), tokenizer.pad_token_id or 0) != (TINY_VOCAB_SIZE, TINY_PAD_TOKEN_ID):
        raise RuntimeError(f"tiny tokenizer: {len(tokenizer)} tokens, pad id {tokenizer.pad_token_id}; "
                           "update TINY_VOCAB_SIZE / TINY_PAD_TOKEN_ID")
    text_encoder = CLIPTextModel(CLIPTextConfig(**configs["text_encoder"]))
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**configs["image_encoder"]))
    feature_extractor = CLIPImageProcessorPil(crop_size={"height": 32, "width": 32}, size={"shortest_edge": 32})
    scheduler = DDIMScheduler.from_config(json.loads((model_config_dir() / "scheduler.json").read_text()))
    return dict(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, image_encoder=image_encoder,
        feature_extractor=feature_extractor, unet=unet, scheduler=scheduler,
    )
