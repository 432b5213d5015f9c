"""Exact token-chunked WanTransformerBlock (Wan 2.2 TI2V-5B): the same latents with less activation memory.

With `expand_timesteps` every token carries its own timestep modulation, and everything in a
WanTransformerBlock except self-attention's keys and values is per token: the modulation, the norms, the query
projection, the cross-attention (its keys/values come from the text), the feed-forward and the residuals.
So a chunked block runs in two passes over chunks of `chunk_tokens` query tokens:
1. keys and values of the WHOLE sequence, chunk by chunk (norm1 + modulation, to_k/to_v, norm_k, rotary);
2. per query chunk: the rest of the block, attending to the whole keys/values.
The per-token modulation (seq, 6, dim) is sliced per chunk and cast to float32 per chunk: the whole-sequence
float32 modulation of the original forward is never made.

Held whole while a chunked block runs (the memory model's "whole" tensors): the block's input and its output
(batch, seq, dim), the keys and values (batch, seq, dim) each, all in the compute dtype; and, from the
transformer's forward, the rotary tables (1, seq, 1, head_dim) x2 and the modulation temb (batch, seq, 6*dim).
Everything else scales with the chunk.

The cross-attention's keys and values (from the text, and from the image context where the model has
add_k_proj) do not depend on the query tokens: they are projected and normed once per block call and shared by
every chunk, exactly as WanAttnProcessor computes them. A cross-attention that is not the plain one (another
processor, hooks or a wrapped forward on attn2, which a re-implementation would bypass) is called whole per
chunk instead: still exact, only slower.

The code follows diffusers 0.42's WanTransformerBlock.forward and WanAttnProcessor.__call__ line by line:
installing checks the version, the classes, and the source of those two functions, and refuses otherwise.
The wrapper goes on the block instance (under an accelerate hook if one sits on the block); it is removed with
apply_token_chunking(transformer, 0). A sequence that fits one chunk runs the original forward.
"""
from __future__ import annotations

import hashlib
import inspect
from typing import Callable

from i2v.core.errors import I2VError
from i2v.models.chunk_state import chunked_calls, set_chunking, token_chunking  # noqa: F401  (this family's API)

SUPPORTED_DIFFUSERS = "0.42."
# sha256 of inspect.getsource() of the two functions the wrapper re-implements (diffusers 0.42.1)
FOLLOWED_SOURCES = {
    "WanTransformerBlock.forward": "21c15441b009932c886757e6fee7875fa866ce1bc2746743cadec3f6c1ad865d",
    "WanAttnProcessor.__call__": "13c09feedcfe814ab506ebde0fec952f7afddd08e3260f73872b8d237cb0f612",
}


class WanChunkingUnsupported(I2VError, RuntimeError):
    """The installed diffusers or the transformer's structure is not what the chunked block was written for."""


class _State:
    """What is installed on one transformer: the budget and, per block, where the wrapper went."""

    def __init__(self, chunk_tokens: int):
        self.chunk_tokens = chunk_tokens
        self.installed: list[tuple[object, str, object]] = []   # (block, attribute, previous or _ABSENT)
        self.chunked_calls = 0                                    # block calls that ran in more than one chunk


_ABSENT = object()


def apply_token_chunking(transformer, chunk_tokens: int) -> None:
    """Install chunking with a budget of `chunk_tokens` query tokens per chunk; 0 removes it; another budget
    replaces the installed one."""
    set_chunking(transformer, chunk_tokens, lambda: _install(transformer, chunk_tokens), _remove)


def _install(transformer, chunk_tokens: int) -> _State:
    blocks = check_supported(transformer)
    state = _State(chunk_tokens)
    for block in blocks:
        attribute = "_old_forward" if _has_accelerate_hook(block) else "forward"
        previous = block.__dict__.get(attribute, _ABSENT)
        original = previous if previous is not _ABSENT else type(block).forward.__get__(block)
        setattr(block, attribute, _chunked_forward(block, original, state))
        state.installed.append((block, attribute, previous))
    return state


def _remove(state: _State) -> None:
    for block, attribute, previous in reversed(state.installed):
        if previous is _ABSENT:
            block.__dict__.pop(attribute, None)
        else:
            setattr(block, attribute, previous)


def _has_accelerate_hook(block) -> bool:
    return hasattr(block, "_hf_hook") and hasattr(block, "_old_forward")


def _source_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def check_supported(transformer) -> list:
    """The transformer's blocks, after checking they are exactly what the wrapper re-implements."""
    import diffusers
    from diffusers.models.transformers import transformer_wan as wan

    if not diffusers.__version__.startswith(SUPPORTED_DIFFUSERS):
        raise WanChunkingUnsupported("chunk_diffusers_version", what="chunked Wan block", supported=SUPPORTED_DIFFUSERS,
                                     installed=diffusers.__version__)
    for name, function in (("WanTransformerBlock.forward", wan.WanTransformerBlock.forward),
                           ("WanAttnProcessor.__call__", wan.WanAttnProcessor.__call__)):
        if _source_hash(function) != FOLLOWED_SOURCES[name]:
            raise WanChunkingUnsupported("chunk_source_differs", name=name, what="block")
    if not isinstance(transformer, wan.WanTransformer3DModel):
        raise WanChunkingUnsupported("chunk_expected_class", expected="a WanTransformer3DModel",
                                     got=type(transformer).__name__)
    blocks = list(transformer.blocks)
    for block in blocks:
        _check_block(block, wan)
    return blocks


def _check_block(block, wan) -> None:
    import torch

    problems = []
    if type(block) is not wan.WanTransformerBlock:
        problems.append(f"block class {type(block).__name__}")
    attn = getattr(block, "attn1", None)
    if type(attn) is not wan.WanAttention:
        problems.append(f"attn1 class {type(attn).__name__}")
    else:
        if type(attn.processor) is not wan.WanAttnProcessor:
            problems.append(f"attn1 processor {type(attn.processor).__name__}")
        elif attn.processor._parallel_config is not None:
            problems.append("context parallelism on attn1")
        if getattr(attn, "fused_projections", False):
            problems.append("fused QKV projections")
        if attn.add_k_proj is not None:
            problems.append("added K/V projections on self-attention")
        if type(attn.norm_q) is not torch.nn.RMSNorm or type(attn.norm_k) is not torch.nn.RMSNorm:
            problems.append("attn1 q/k norms are not RMSNorm")
    registry = getattr(block, "_diffusers_hook", None)
    if registry is not None and getattr(registry, "hooks", None):
        problems.append(f"diffusers hooks on the block itself ({list(registry.hooks)})")
    if problems:
        raise WanChunkingUnsupported("chunk_structure", what="Wan block", follows="block", problems=", ".join(problems))


def _apply_rotary_emb(hidden_states, freqs_cos, freqs_sin):
    """WanAttnProcessor's nested apply_rotary_emb, verbatim."""
    import torch

    x1, x2 = hidden_states.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(hidden_states)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(hidden_states)


def _chunked_forward(block, original: Callable, state: _State) -> Callable:
    """The block's forward, chunked over query tokens when the sequence needs more than one chunk."""

    def forward(hidden_states, encoder_hidden_states, temb, rotary_emb, *args, **kwargs):
        seq_len = hidden_states.shape[1]
        if args or kwargs or encoder_hidden_states is None or seq_len <= state.chunk_tokens:
            return original(hidden_states, encoder_hidden_states, temb, rotary_emb, *args, **kwargs)
        state.chunked_calls += 1
        return _run_chunked(block, hidden_states, encoder_hidden_states, temb, rotary_emb, state.chunk_tokens)

    return forward


def _modulation(block, temb, start: int, end: int):
    """The six modulation tensors of tokens [start, end) in float32 (per token for a 4-d temb, else shared)."""
    if temb.ndim == 4:
        # temb: batch_size, seq_len, 6, inner_dim (wan2.2 ti2v)
        parts = (block.scale_shift_table.unsqueeze(0) + temb[:, start:end].float()).chunk(6, dim=2)
        return [part.squeeze(2) for part in parts]
    # temb: batch_size, 6, inner_dim (wan2.1/wan2.2 14B)
    return list((block.scale_shift_table + temb.float()).chunk(6, dim=1))


def _run_chunked(block, hidden_states, encoder_hidden_states, temb, rotary_emb, chunk_tokens: int):
    import torch
    from diffusers.models.attention_dispatch import dispatch_attention_fn

    attn = block.attn1
    batch, seq_len, _ = hidden_states.shape
    bounds = [(start, min(start + chunk_tokens, seq_len)) for start in range(0, seq_len, chunk_tokens)]
    freqs_cos, freqs_sin = rotary_emb if rotary_emb is not None else (None, None)

    def norm_msa(start, end):
        shift_msa, scale_msa = _modulation(block, temb, start, end)[:2]
        part = hidden_states[:, start:end]
        return (block.norm1(part.float()) * (1 + scale_msa) + shift_msa).type_as(part)

    # Pass 1: keys and values of the whole sequence (the only whole-sequence inputs of the block).
    key = value = None
    for start, end in bounds:
        norm_hidden_states = norm_msa(start, end)
        key_part = attn.norm_k(attn.to_k(norm_hidden_states)).unflatten(2, (attn.heads, -1))
        value_part = attn.to_v(norm_hidden_states).unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            key_part = _apply_rotary_emb(key_part, freqs_cos[:, start:end], freqs_sin[:, start:end])
        if key is None:
            key = key_part.new_empty((batch, seq_len) + tuple(key_part.shape[2:]))
            value = value_part.new_empty((batch, seq_len) + tuple(value_part.shape[2:]))
        key[:, start:end] = key_part
        value[:, start:end] = value_part
        del norm_hidden_states, key_part, value_part

    # The cross-attention's keys/values: once for every chunk (None: call attn2 per chunk).
    cross = _cross_context(block.attn2, encoder_hidden_states) if _plain_cross_attention(block.attn2) else None

    # Pass 2: everything else, per query chunk.
    output = torch.empty_like(hidden_states)
    for start, end in bounds:
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = _modulation(block, temb, start, end)
        part = hidden_states[:, start:end]

        # 1. Self-attention (WanAttnProcessor with the query of this chunk and the whole keys/values)
        norm_hidden_states = (block.norm1(part.float()) * (1 + scale_msa) + shift_msa).type_as(part)
        query = attn.norm_q(attn.to_q(norm_hidden_states)).unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            query = _apply_rotary_emb(query, freqs_cos[:, start:end], freqs_sin[:, start:end])
        attn_output = dispatch_attention_fn(
            query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
            backend=attn.processor._attention_backend, parallel_config=None,
        )
        attn_output = attn_output.flatten(2, 3).type_as(query)
        attn_output = attn.to_out[0](attn_output)
        attn_output = attn.to_out[1](attn_output)
        part = (part.float() + attn_output * gate_msa).type_as(part)

        # 2. Cross-attention
        norm_hidden_states = block.norm2(part.float()).type_as(part)
        if cross is None:
            attn_output = block.attn2(norm_hidden_states, encoder_hidden_states, None, None)
        else:
            attn_output = _cross_attention(block.attn2, norm_hidden_states, cross)
        part = part + attn_output

        # 3. Feed-forward
        norm_hidden_states = (block.norm3(part.float()) * (1 + c_scale_msa) + c_shift_msa).type_as(part)
        ff_output = block.ffn(norm_hidden_states)
        output[:, start:end] = (part.float() + ff_output.float() * c_gate_msa).type_as(part)
        del norm_hidden_states, attn_output, ff_output, query, part
    return output


def _plain_cross_attention(attn) -> bool:
    """Whether attn2 is WanAttention + WanAttnProcessor with nothing around its forward, so that
    _cross_context + _cross_attention compute exactly what calling it would."""
    from diffusers.models.transformers import transformer_wan as wan

    if type(attn) is not wan.WanAttention or type(attn.processor) is not wan.WanAttnProcessor:
        return False
    if "forward" in attn.__dict__ or hasattr(attn, "_hf_hook"):
        return False
    if attn._forward_hooks or attn._forward_pre_hooks:
        return False
    registry = getattr(attn, "_diffusers_hook", None)
    if registry is not None and getattr(registry, "hooks", None):
        return False
    # fused projections on a module not marked cross-attention would project the queries' tokens, not the text
    return not getattr(attn, "fused_projections", False) or attn.is_cross_attention


def _cross_context(attn, encoder_hidden_states):
    """WanAttnProcessor's keys/values for `encoder_hidden_states`, unflattened to heads: (key, value, key_img,
    value_img), the image pair None without add_k_proj (Wan 2.2 TI2V has none)."""
    key_img = value_img = None
    fused = getattr(attn, "fused_projections", False)
    if attn.add_k_proj is not None:
        # 512 is the context length of the text encoder, hardcoded for now (as in WanAttnProcessor)
        image_context_length = encoder_hidden_states.shape[1] - 512
        encoder_hidden_states_img = encoder_hidden_states[:, :image_context_length]
        encoder_hidden_states = encoder_hidden_states[:, image_context_length:]
        key_img, value_img = _key_value(attn, encoder_hidden_states_img, fused and "to_added_kv", "add_k_proj",
                                        "add_v_proj")
        key_img = attn.norm_added_k(key_img).unflatten(2, (attn.heads, -1))
        value_img = value_img.unflatten(2, (attn.heads, -1))
    key, value = _key_value(attn, encoder_hidden_states, fused and "to_kv", "to_k", "to_v")
    key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
    value = value.unflatten(2, (attn.heads, -1))
    return key, value, key_img, value_img



def _key_value(attn, states, fused: str | bool, key_proj: str, value_proj: str):
    """The key and value projections of `states`: by the fused projection (named `fused`) where the processor
    fused them (attn.fuse_projections()), else by the two separate ones, as WanAttnProcessor does."""
    if fused:
        return getattr(attn, fused)(states).chunk(2, dim=-1)
    return getattr(attn, key_proj)(states), getattr(attn, value_proj)(states)

def _cross_attention(attn, hidden_states, cross):
    """WanAttnProcessor.__call__(attn, hidden_states, encoder_hidden_states, None, None) for one query chunk,
    with the keys/values of _cross_context."""
    from diffusers.models.attention_dispatch import dispatch_attention_fn

    key, value, key_img, value_img = cross
    backend = attn.processor._attention_backend
    query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
    hidden_states_img = None
    if key_img is not None:
        hidden_states_img = dispatch_attention_fn(
            query, key_img, value_img, attn_mask=None, dropout_p=0.0, is_causal=False, backend=backend,
            parallel_config=None,
        )
        hidden_states_img = hidden_states_img.flatten(2, 3).type_as(query)
    hidden_states = dispatch_attention_fn(
        query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, backend=backend, parallel_config=None,
    )
    hidden_states = hidden_states.flatten(2, 3).type_as(query)
    if hidden_states_img is not None:
        hidden_states = hidden_states + hidden_states_img
    hidden_states = attn.to_out[0](hidden_states)
    return attn.to_out[1](hidden_states)
