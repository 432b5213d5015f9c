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

# The request field of each plan key (decode_chunk keeps the pipeline's own name on the request).
REQUEST_FIELD = {"offload": "offload", "cfg_split": "cfg_split", "chunk_tokens": "chunk_tokens",
                 "weights_dtype": "weights_dtype", "decode_chunk": "decode_chunk_size", "vae_tiling": "vae_tiling",
                 "text_encoder_cpu": "text_encoder_cpu"}
# The parts a family's plans may vary (i2v/models records say theirs); the others stay at their defaults.
ALL_PARTS = tuple(REQUEST_FIELD)
I2VGEN_PARTS = ("offload", "cfg_split", "chunk_tokens", "weights_dtype", "decode_chunk", "vae_tiling")
LOSSY_WEIGHTS_DTYPES = ("fp8",)
# Frames per VAE decode call the ladder tries (the pipeline default, 1, is also the smallest).
DECODE_CHUNKS = (8, 4, 2, 1)


@dataclass(frozen=True)
class Plan:
    offload: str = "none"
    cfg_split: bool = False
    chunk_tokens: int = 0
    weights_dtype: str = "fp16"
    decode_chunk: int = DEFAULT_DECODE_CHUNK_SIZE
    vae_tiling: bool = False
    text_encoder_cpu: bool = False     # exact: the text encoder runs on the CPU (no GPU memory, slower)

    @classmethod
    def of(cls, request: Any) -> "Plan":
        """The plan part of a GenerationRequest (or anything with its fields)."""
        return cls(**{key: getattr(request, name) for key, name in REQUEST_FIELD.items()})

    def request_fields(self) -> dict[str, Any]:
        return {REQUEST_FIELD[key]: value for key, value in asdict(self).items()}

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


class PlanError(I2VError, ValueError):
    """A forced plan part that is not a valid value; the message names the part."""


def check_forced(forced: Mapping[str, Any]) -> dict[str, Any]:
    """Validate plan parts the user forced (CLI flags): known keys, valid values. Returns a clean dict."""
    problems = []
    clean: dict[str, Any] = {}
    for key, value in forced.items():
        if value is None:
            continue
        if key not in PLAN_KEYS:
            problems.append(f"unknown plan part {key!r}")
        elif key == "offload" and value not in OFFLOAD_MODES:
            problems.append(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {value!r}")
        elif key == "weights_dtype" and value not in WEIGHTS_DTYPES:
            problems.append(f"weights_dtype must be one of {', '.join(WEIGHTS_DTYPES)}, got {value!r}")
        elif key in ("cfg_split", "vae_tiling", "text_encoder_cpu") and not isinstance(value, bool):
            problems.append(f"{key} must be true or false, got {value!r}")
        elif key == "chunk_tokens" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"chunk_tokens must be 0 (off) or a positive whole number, got {value!r}")
        elif key == "decode_chunk" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append(f"decode_chunk must be a whole number of at least 1, got {value!r}")
        else:
            clean[key] = value
    if problems:
        raise PlanError("; ".join(problems))
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
