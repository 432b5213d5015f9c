"""The plan in words, one formatter per plan key, in English or Chinese: the page, the sidecar's `plan_words`
and the CLI all say a plan with these (the words themselves are in i2v.core.words.plan).

A plan arrives as a plain dict (Plan.as_dict(), a sidecar's "plan", an estimate's "plan"); `device` is the
device kind ('cuda' says "GPU memory", anything else plain "memory").
"""
from __future__ import annotations

from i2v.core import words

# The order a plan is told in (older sidecars say decode_chunk_size).
PLAN_ORDER = ("offload", "cfg_split", "chunk_tokens", "weights_dtype", "decode_chunk", "decode_chunk_size",
              "vae_tiling", "text_encoder_cpu")


def mem(lang: str, device: str | None = "cuda") -> str:
    """'GPU memory' on a machine with a GPU, plain 'memory' without one."""
    return words.render("mem_cuda" if device == "cuda" else "mem_cpu", lang)


def tokens_text(tokens: int) -> str:
    tokens = int(tokens)
    return f"{tokens // 1024}K" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)


def offload_words(value, lang: str, device: str | None = "cuda") -> str:
    key = f"plan_offload_{value}"
    return words.render(key, lang, mem=mem(lang, device)) if words.has(key) else str(value)


def cfg_split_words(value, lang: str, device: str | None = "cuda") -> str:
    return words.render("plan_cfg_split", lang) if value else ""


def chunk_tokens_words(value, lang: str, device: str | None = "cuda") -> str:
    return words.render("plan_chunks", lang, tokens=tokens_text(value)) if value else ""


def weights_dtype_words(value, lang: str, device: str | None = "cuda") -> str:
    return words.render("plan_fp8", lang) if value == "fp8" else ""


def decode_chunk_words(value, lang: str, device: str | None = "cuda") -> str:
    return words.render("plan_decode", lang, frames=value) if value else ""


def vae_tiling_words(value, lang: str, device: str | None = "cuda") -> str:
    return words.render("plan_tiling", lang) if value else ""


def text_encoder_cpu_words(value, lang: str, device: str | None = "cuda") -> str:
    return words.render("plan_text_encoder_cpu", lang) if value else ""


PLAN_WORDS = {"offload": offload_words, "cfg_split": cfg_split_words, "chunk_tokens": chunk_tokens_words,
              "weights_dtype": weights_dtype_words, "decode_chunk": decode_chunk_words,
              "decode_chunk_size": decode_chunk_words, "vae_tiling": vae_tiling_words,
              "text_encoder_cpu": text_encoder_cpu_words}


def plan_text(plan: dict | None, lang: str = "en", device: str | None = "cuda") -> str:
    """The plan in plain words: 'weights streamed from RAM (group offload); CFG halves run one after the other'."""
    if not plan:
        return ""
    parts = [PLAN_WORDS[key](plan[key], lang, device) for key in PLAN_ORDER if key in plan]
    return ("；" if lang == "zh" else "; ").join(p for p in parts if p)


def value_text(field: str, value, lang: str, device: str | None = "cuda") -> str:
    """A plan or setting value as the user reads it ('fp16 weights', 'off', '512')."""
    if field in PLAN_WORDS:
        said = PLAN_WORDS[field](value, lang, device)
        if said:
            return said
        return words.render("plan_fp16" if field == "weights_dtype" else "plan_off", lang)
    if isinstance(value, bool):
        return words.render("plan_on" if value else "plan_off", lang)
    return str(value)
