"""An exception across a process boundary (the local worker's pipe, a Ray actor's reply) as a plain dict, and
back: the one format both backends use. Only the type's name, the catalogue key and its params travel, never
a traceback or parsed English, so the server raises the same type the worker raised, in either language.

A failure that is not one of ours (a bug, a library's error) arrives as GenerationFailed naming its type and
text in `detail` (its traceback stays in the worker's log). Stdlib only (i2v.core).
"""
from __future__ import annotations

from typing import Any

from i2v.core.errors import WIRE_TYPES, GenerationFailed, I2VError


def to_wire(exc: BaseException, where: str = "") -> dict[str, Any]:
    """exc as {"type", "key", "params"}: plain values, picklable and JSON-able for our own types' params.
    `where` (a host, 'worker') names where a foreign failure happened."""
    if isinstance(exc, I2VError) and type(exc).__name__ in WIRE_TYPES:
        return {"type": type(exc).__name__, "key": exc.key, "params": dict(exc.params)}
    if isinstance(exc, I2VError):             # a subclass of ours the wire does not know: its nearest known base
        base = next(c for c in type(exc).__mro__ if c.__name__ in WIRE_TYPES and WIRE_TYPES[c.__name__] is c)
        return {"type": base.__name__, "key": exc.key, "params": dict(exc.params)}
    detail = f"{type(exc).__name__}: {exc}"
    return {"type": GenerationFailed.__name__, "key": "generation_failed",
            "params": {"detail": detail, "where": where}}


def from_wire(data: dict[str, Any]) -> I2VError:
    """The exception to_wire described, rebuilt as its own type (GenerationFailed for an unknown one)."""
    cls = WIRE_TYPES.get(str(data.get("type")), GenerationFailed)
    error = cls.__new__(cls)
    I2VError.__init__(error, data.get("key") or "generation_failed", **(data.get("params") or {}))
    return error
