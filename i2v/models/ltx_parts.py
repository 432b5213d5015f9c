"""LTX-Video's exact plan parts as reversible wrappers on module instances (diffusers untouched):

- CFG split: the pipeline runs both guidance halves as one batch-2 transformer call; split, each half is a
  batch-1 call and the two outputs are concatenated (the same values to float rounding, half the activations).
- token chunking: every block's feed-forward (per token: Linear, GELU, Linear) and cross-attention (queries per
  token against the whole text) run over `chunk_tokens` tokens at a time. The 4x-wide feed-forward hidden is
  the largest activation of a block; self-attention stays whole (its keys need every token).

Each wrapper is the outermost `forward` on its instance (over any offload hook, which the driver installs
while the parts are off), and removing it restores exactly what was there.
"""
from __future__ import annotations

from typing import Any, Callable

from i2v.models.chunk_state import chunked_calls, set_chunking, token_chunking  # noqa: F401  (this family's API)

CFG_SPLIT_ATTRIBUTE = "_i2v_cfg_split"
_ABSENT = object()


class _Wrapped:
    """The instances wrapped by one part and what their `forward` was before."""

    def __init__(self, value: Any):
        self.value = value                      # the part's setting (True, or the token budget)
        self.chunk_tokens = value
        self.installed: list[tuple[object, object]] = []
        self.chunked_calls = 0                  # calls that really ran in more than one piece

    def wrap(self, module, make: Callable[[Callable], Callable]) -> None:
        previous = module.__dict__.get("forward", _ABSENT)
        module.forward = make(module.forward)
        self.installed.append((module, previous))

    def unwrap(self) -> None:
        for module, previous in reversed(self.installed):
            if previous is _ABSENT:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous
        self.installed.clear()


# ---------------------------------------------------------------------------------------------- CFG split
def cfg_split(transformer) -> bool:
    return getattr(transformer, CFG_SPLIT_ATTRIBUTE, None) is not None


def set_cfg_split(transformer, on: bool) -> None:
    state = getattr(transformer, CFG_SPLIT_ATTRIBUTE, None)
    if on == (state is not None):
        return
    if not on:
        state.unwrap()
        object.__delattr__(transformer, CFG_SPLIT_ATTRIBUTE)
        return
    state = _Wrapped(True)
    state.wrap(transformer, lambda original: _split_forward(original, state))
    object.__setattr__(transformer, CFG_SPLIT_ATTRIBUTE, state)


def _split_forward(original: Callable, state: _Wrapped) -> Callable:
    def forward(*args, **kwargs):
        import torch

        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        batch = hidden.shape[0]
        if batch < 2:
            return original(*args, **kwargs)
        state.chunked_calls += 1
        outputs = [original(*_half(args, batch, i), **_half(kwargs, batch, i)) for i in range(batch)]
        first = outputs[0]
        if isinstance(first, tuple):
            return tuple(torch.cat([o[k] for o in outputs]) for k in range(len(first)))
        sample = torch.cat([o.sample for o in outputs])
        return type(first)(sample=sample)

    return forward


def _half(value: Any, batch: int, index: int):
    """Every tensor with `batch` rows cut to row `index` (inside tuples, lists and dicts)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value[index:index + 1] if value.ndim and value.shape[0] == batch else value
    if isinstance(value, dict):
        return {k: _half(v, batch, index) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_half(v, batch, index) for v in value)
    return value


# ---------------------------------------------------------------------------------------------- chunking
def set_token_chunking(transformer, chunk_tokens: int) -> None:
    """Install chunking at `chunk_tokens` tokens per piece; 0 removes it; another budget replaces it."""
    set_chunking(transformer, chunk_tokens, lambda: _install_chunking(transformer, chunk_tokens), _Wrapped.unwrap)


def _install_chunking(transformer, chunk_tokens: int) -> "_Wrapped":
    state = _Wrapped(chunk_tokens)
    for block in transformer.transformer_blocks:
        state.wrap(block.ff, lambda original: _chunked_ff(original, state))
        state.wrap(block.attn2, lambda original: _chunked_cross(original, state))
    return state


def _chunked_ff(original: Callable, state: _Wrapped) -> Callable:
    def forward(hidden_states, *args, **kwargs):
        import torch

        size = state.value
        if hidden_states.ndim != 3 or hidden_states.shape[1] <= size:
            return original(hidden_states, *args, **kwargs)
        state.chunked_calls += 1
        return torch.cat([original(hidden_states[:, start:start + size], *args, **kwargs)
                          for start in range(0, hidden_states.shape[1], size)], dim=1)

    return forward


def _chunked_cross(original: Callable, state: _Wrapped) -> Callable:
    """Cross-attention (encoder_hidden_states given, no rotary embedding): each query chunk against the whole
    text and its mask; any other call (self-attention, rotary) runs whole."""

    def forward(hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None, **kwargs):
        import torch

        size = state.value
        if encoder_hidden_states is None or image_rotary_emb is not None or hidden_states.shape[1] <= size:
            return original(hidden_states, encoder_hidden_states=encoder_hidden_states,
                            attention_mask=attention_mask, image_rotary_emb=image_rotary_emb, **kwargs)
        state.chunked_calls += 1
        return torch.cat([original(hidden_states[:, start:start + size], encoder_hidden_states=encoder_hidden_states,
                                   attention_mask=attention_mask, image_rotary_emb=None, **kwargs)
                          for start in range(0, hidden_states.shape[1], size)], dim=1)

    return forward
