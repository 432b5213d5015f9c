"""A plan: how one job runs on the device, independent of what the user asked for.

Six parts: where the weights live (`offload`), whether the two classifier-free-guidance halves run as two
batch-1 UNet calls (`cfg_split`), the token budget of the exact chunked UNet (`chunk_tokens`, 0 = off), the
storage dtype of the UNet weights (`weights_dtype`), frames per VAE decode call (`decode_chunk`) and VAE
tiling (`vae_tiling`). Exact parts change memory and time, never the pixels; fp8 weights and VAE tiling
change the pixels and are *lossy*: the automatic choice takes them only when no exact plan fits.
The ladder over plans (which one is next smaller) lives in i2v.core.fallback.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from i2v.core.settings import DEFAULT_DECODE_CHUNK_SIZE, OFFLOAD_MODES, WEIGHTS_DTYPES
from i2v.core.errors import I2VError

# The parts a family's plans may vary (i2v/models records say theirs); the others stay at their defaults.
I2VGEN_PARTS = ("offload", "cfg_split", "chunk_tokens", "weights_dtype", "decode_chunk", "vae_tiling")
LOSSY_WEIGHTS_DTYPES = ("fp8",)
# Frames per VAE decode call the ladder tries (the pipeline default, 1, is also the smallest).
DECODE_CHUNKS = (8, 4, 2, 1)
_FLAGS = ("cfg_split", "vae_tiling", "text_encoder_cpu")


class PlanError(I2VError, ValueError):
    """A plan part that is not a valid value (forced by a flag or the API, or built by code); names the part."""


def _whole(value: Any, least: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= least


def part_problem(key: str, value: Any) -> str | None:
    """What is wrong with one plan part's value (None: nothing): the one check of every plan part, used by
    Plan itself and by check_forced (which reports every bad part at once)."""
    if key == "offload" and value not in OFFLOAD_MODES:
        return f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {value!r}"
    if key == "weights_dtype" and value not in WEIGHTS_DTYPES:
        return f"weights_dtype must be one of {', '.join(WEIGHTS_DTYPES)}, got {value!r}"
    if key in _FLAGS and not isinstance(value, bool):
        return f"{key} must be true or false, got {value!r}"
    if key == "chunk_tokens" and not _whole(value, 0):
        return f"chunk_tokens must be 0 (off) or a positive whole number, got {value!r}"
    if key == "decode_chunk" and not _whole(value, 1):
        return f"decode_chunk must be a whole number of at least 1, got {value!r}"
    return None


@dataclass(frozen=True)
class Plan:
    """How one job runs; a Plan that exists is valid (checked here, and nowhere else)."""
    offload: str = "none"
    cfg_split: bool = False
    chunk_tokens: int = 0
    weights_dtype: str = "fp16"
    decode_chunk: int = DEFAULT_DECODE_CHUNK_SIZE
    vae_tiling: bool = False
    text_encoder_cpu: bool = False     # exact: the text encoder runs on the CPU (no GPU memory, slower)

    def __post_init__(self) -> None:
        problems = [p for p in (part_problem(f.name, getattr(self, f.name)) for f in fields(self)) if p]
        if problems:
            raise PlanError("plan_invalid", detail="; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def lossy(self) -> bool:
        """True when the plan changes the pixels (fp8 weights or VAE tiling)."""
        return self.weights_dtype in LOSSY_WEIGHTS_DTYPES or self.vae_tiling

    @property
    def lossy_parts(self) -> tuple[str, ...]:
        return tuple(key for key, lossy in (("weights_dtype", self.weights_dtype in LOSSY_WEIGHTS_DTYPES),
                                             ("vae_tiling", self.vae_tiling)) if lossy)

    def replace(self, **changes: Any) -> "Plan":
        return Plan(**{**asdict(self), **changes})


PLAN_KEYS = tuple(f.name for f in fields(Plan))


def check_forced(forced: Mapping[str, Any]) -> dict[str, Any]:
    """Validate plan parts the user forced (CLI flags, API): known keys, valid values, every problem named at
    once. Returns a clean dict (None values dropped)."""
    problems = []
    clean: dict[str, Any] = {}
    for key, value in forced.items():
        if value is None:
            continue
        problem = f"unknown plan part {key!r}" if key not in PLAN_KEYS else part_problem(key, value)
        if problem:
            problems.append(problem)
        else:
            clean[key] = value
    if problems:
        raise PlanError("plan_invalid", detail="; ".join(problems))
    return clean


def candidate_plans(chunk_budgets: tuple[int, ...], forced: Mapping[str, Any] | None = None,
                    fp8_available: bool = True, decode_chunk_max: int = DEFAULT_DECODE_CHUNK_SIZE,
                    offload_modes: tuple[str, ...] = OFFLOAD_MODES,
                    parts: tuple[str, ...] = I2VGEN_PARTS) -> list[Plan]:
    """Every plan worth considering (forced parts fixed), in no particular order.

    chunk_budgets: the token budgets the memory profile has traces for (0 = off is always a candidate);
    decode_chunk_max: the largest frames-per-decode-call to consider (the request's own value);
    parts: the plan parts the model's family can vary (the others keep their defaults).
    """
    forced = dict(forced or {})
    options: dict[str, tuple] = {
        "offload": offload_modes,
        "cfg_split": (False, True),
        "chunk_tokens": (0,) + tuple(sorted(set(chunk_budgets), reverse=True)),
        "weights_dtype": WEIGHTS_DTYPES if fp8_available else ("fp16",),
        "decode_chunk": tuple(c for c in DECODE_CHUNKS if c <= max(1, decode_chunk_max)) or (1,),
        "vae_tiling": (False, True),
        "text_encoder_cpu": (False, True),
    }
    defaults = Plan()
    for key in PLAN_KEYS:
        if key not in parts:
            options[key] = (getattr(defaults, key),)
    for key, value in forced.items():
        options[key] = (value,)
    plans = [Plan()]
    for key in PLAN_KEYS:
        plans = [plan.replace(**{key: value}) for plan in plans for value in options[key]]
    return plans


def smallest_plans(chunk_budgets: tuple[int, ...], forced: Mapping[str, Any] | None = None,
                   fp8_available: bool = True, offload_modes: tuple[str, ...] = OFFLOAD_MODES,
                   parts: tuple[str, ...] = I2VGEN_PARTS) -> list[Plan]:
    """The few plans among which the lowest peak lies (every saving on, per offload mode): the cheap test
    of whether a request can fit at all, used while searching the user's settings."""
    smallest = {"cfg_split": True, "chunk_tokens": min(chunk_budgets) if chunk_budgets else 0,
                "weights_dtype": "fp8" if fp8_available else "fp16", "decode_chunk": 1, "vae_tiling": True,
                "text_encoder_cpu": True}
    smallest = {k: v for k, v in smallest.items() if k in parts}
    smallest.update({k: v for k, v in (forced or {}).items() if k != "offload"})
    modes = (forced["offload"],) if forced and "offload" in forced else offload_modes
    return [Plan(offload=mode, **smallest) for mode in modes]


@dataclass(frozen=True)
class RankedPlan:
    """One plan of a ranking with the peaks the server predicted for it (the whole run, and its decode)."""
    plan: Plan
    peak_bytes: int
    decode_bytes: int


@dataclass(frozen=True)
class Notch:
    """One step down in the user's settings (the settings changed, absolute), with the smallest plan there."""
    changes: tuple[tuple[str, Any], ...]
    ranked: RankedPlan


@dataclass(frozen=True)
class Ranking:
    """The server's plan decision, carried with the request so the worker never decides again: the plans for
    the request's settings fastest first (exact before lossy, forced parts fixed) with their predicted peaks,
    then the settings notches below them, each with its smallest plan. Pure data: no memory model needed."""
    plans: tuple[RankedPlan, ...]
    notches: tuple[Notch, ...] = ()

    def entry(self, plan: Plan) -> RankedPlan | None:
        return next((ranked for ranked in self.plans if ranked.plan == plan), None)
