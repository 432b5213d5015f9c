"""What an exact token chunking leaves on the transformer it is installed on, for every family: a state with
its budget (`chunk_tokens`) and a count of the calls that really ran in more than one piece (the tests check
the chunking happened), under one attribute. Installing, keeping and removing follow one rule here; what is
wrapped is the family's own (i2v/models/wan_chunking.py, i2v/models/ltx_parts.py)."""
from __future__ import annotations

from typing import Any, Callable

STATE_ATTRIBUTE = "_i2v_token_chunking"


def token_chunking(transformer) -> int:
    """The query-token budget installed on this transformer (0: none)."""
    state = getattr(transformer, STATE_ATTRIBUTE, None)
    return state.chunk_tokens if state else 0


def chunked_calls(transformer) -> int:
    """Calls that ran in more than one chunk since install."""
    state = getattr(transformer, STATE_ATTRIBUTE, None)
    return state.chunked_calls if state else 0


def set_chunking(transformer, chunk_tokens: int, install: Callable[[], Any],
                 remove: Callable[[Any], None]) -> None:
    """Chunking at `chunk_tokens` per piece on `transformer`: the same budget keeps what is installed, another
    replaces it, 0 removes it. `install()` wraps the modules and returns the state; `remove(state)` unwraps."""
    if isinstance(chunk_tokens, bool) or not isinstance(chunk_tokens, int) or chunk_tokens < 0:
        raise ValueError(f"chunk_tokens must be 0 (off) or a positive int, got {chunk_tokens!r}")
    state = getattr(transformer, STATE_ATTRIBUTE, None)
    if state is not None:
        if state.chunk_tokens == chunk_tokens:
            return
        remove(state)
        object.__delattr__(transformer, STATE_ATTRIBUTE)
    if chunk_tokens:
        object.__setattr__(transformer, STATE_ATTRIBUTE, install())
