"""Wan token chunking projects the cross-attention's keys/values once per block call, not once per chunk, and
stays exact (fp32, tiny random WanTransformer3DModel): the TI2V path (per-token timesteps, text only), the
image-context path (add_k_proj, plain and fused) and the fallback for a cross-attention it must not bypass."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from i2v.models import wan_chunking, wan_runtime  # noqa: E402

EXACT_TOLERANCE = 1e-4
FRAMES, HEIGHT, WIDTH = 3, 16, 16            # latents; patch 1x2x2 -> 3 * 8 * 8 = 192 tokens
TOKENS = FRAMES * (HEIGHT // 2) * (WIDTH // 2)
TEXT_TOKENS = 512                            # WanAttnProcessor hard-codes 512 text tokens for the image split


def tiny_transformer(**changes):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    config = {**wan_runtime.tiny_configs()["transformer"], **changes}
    return WanTransformer3DModel(**{**config, "patch_size": tuple(config["patch_size"])}).eval()


def inputs(transformer, image_tokens: int = 0):
    generator = torch.Generator("cpu").manual_seed(1)
    config = transformer.config
    hidden = torch.randn(1, config.in_channels, FRAMES, HEIGHT, WIDTH, generator=generator)
    timestep = torch.linspace(999.0, 0.0, TOKENS).unsqueeze(0)          # per token: the TI2V 4-d modulation
    text = torch.randn(1, TEXT_TOKENS, config.text_dim, generator=generator)
    image = torch.randn(1, image_tokens, config.image_dim, generator=generator) if image_tokens else None
    return hidden, timestep, text, image


def run(transformer, chunk_tokens: int, args, modules=()) -> tuple:
    """The output with `chunk_tokens` (0: plain) and the forward calls of each of `modules`."""
    counts = [0] * len(modules)
    handles = [module.register_forward_hook(lambda *_, i=i: counts.__setitem__(i, counts[i] + 1))
               for i, module in enumerate(modules)]
    hidden, timestep, text, image = args
    try:
        wan_chunking.apply_token_chunking(transformer, chunk_tokens)
        with torch.no_grad():
            output = transformer(hidden, timestep, text, encoder_hidden_states_image=image, return_dict=False)[0]
    finally:
        wan_chunking.apply_token_chunking(transformer, 0)
        for handle in handles:
            handle.remove()
    return output, counts


@pytest.mark.parametrize("chunk_tokens", [100, 64, 7])       # 2 chunks (100 + 92), 3, 28 (the last of 3 tokens)
def test_text_keys_values_once_per_block_call_and_exact(chunk_tokens):
    transformer = tiny_transformer()
    args = inputs(transformer)
    plain, _ = run(transformer, 0, args)
    projections = [module for block in transformer.blocks for module in (block.attn2.to_k, block.attn2.to_v)]
    chunked, counts = run(transformer, chunk_tokens, args, projections + [transformer.blocks[0].attn2.to_q])
    assert counts[:-1] == [1] * len(projections)                    # one forward: one call per block
    assert counts[-1] == -(-TOKENS // chunk_tokens)                 # while the queries went chunk by chunk
    assert (chunked - plain).abs().max().item() <= EXACT_TOLERANCE
    assert not torch.equal(plain, torch.zeros_like(plain))


@pytest.mark.parametrize("fused", [False, True])
def test_image_context_keys_values_once_and_exact(fused):
    """Wan 2.1 I2V's image context (add_k_proj), which TI2V lacks: the image keys/values are shared too."""
    transformer = tiny_transformer(image_dim=16, added_kv_proj_dim=24)
    if fused:
        for block in transformer.blocks:
            block.attn2.fuse_projections()
    args = inputs(transformer, image_tokens=6)
    plain, _ = run(transformer, 0, args)
    attn2 = transformer.blocks[0].attn2
    modules = [attn2.to_kv, attn2.to_added_kv] if fused else [attn2.to_k, attn2.add_k_proj, attn2.add_v_proj]
    chunked, counts = run(transformer, 50, args, modules)
    assert counts == [1] * len(modules)
    assert (chunked - plain).abs().max().item() <= EXACT_TOLERANCE
    assert (run(transformer, 50, args)[0] - plain).abs().max().item() <= EXACT_TOLERANCE


def test_a_hooked_cross_attention_is_called_per_chunk_and_stays_exact():
    """A hook on attn2 (a cache, an offload hook) would be bypassed by the shared keys/values: attn2 runs whole."""
    transformer = tiny_transformer()
    args = inputs(transformer)
    plain, _ = run(transformer, 0, args)
    attn2 = transformer.blocks[0].attn2
    chunked, counts = run(transformer, 64, args, [attn2, attn2.to_k, transformer.blocks[1].attn2.to_k])
    assert counts == [3, 3, 1]            # the hooked block: per chunk; the other one: once
    assert (chunked - plain).abs().max().item() <= EXACT_TOLERANCE
