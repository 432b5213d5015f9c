"""Predicted time of a job's denoising from the traced FLOPs and what the plan adds (CFG split, chunk calls,
fp8 upcasts, weights moved over the host link): a ranking of plans and a first guess before any measurement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from i2v.core.memory_peak import _cfg_split, _on_cpu
from i2v.core.memory_tables import (
    DTYPE_BYTES, I2VGEN_FAMILY, TEXT_ENCODER, VAE_SCALE_FACTOR, MemoryModel, traced_budget, weights_bytes,
)
from i2v.core.offload import NEVER, OFFLOAD_BY_NAME, ONCE_PER_JOB, PER_CALL_OVERLAPPED
from i2v.core.request import GenerationRequest
from i2v.core.units import GIB


def denoise_calls(model: MemoryModel, request: GenerationRequest) -> int:
    """Denoiser calls per step: the family's count with CFG (I2VGen-XL: 1 of batch 2, or 2 of batch 1 when
    split; Wan: 2 of batch 1), one call fewer per pair without CFG."""
    calls = int(model.family["denoise_calls_per_step"])
    if request.guidance_scale <= 1:
        return max(1, calls // 2)
    return calls * (2 if _cfg_split(model, request) else 1)


def flops_per_step(model: MemoryModel, request: GenerationRequest, dtype: str = "fp16") -> float | None:
    """Traced FLOPs of one denoise step: `denoise_calls_per_step` calls of the traced one-call table (I2VGen-XL:
    one UNet forward of CFG batch 2), halved without CFG."""
    curve = model.tables[dtype].flops
    if curve is None:
        return None
    flops = curve(float(request.width * request.height * request.num_frames))
    flops *= int(model.family["denoise_calls_per_step"])
    return flops if request.guidance_scale > 1 else flops / 2


def extra_chunk_calls(request: GenerationRequest, chunk_tokens: int, model: MemoryModel | None = None) -> int:
    """Module calls the chunked denoiser makes beyond the plain one in one step (an estimate from the token
    counts per resolution level; each wrapped module runs ceil(tokens / budget) chunks instead of one call).
    The family says how many modules are wrapped per level and over how many levels (I2VGen-XL: 22 x 4)."""
    if chunk_tokens <= 0:
        return 0
    family = model.family if model is not None else I2VGEN_FAMILY
    scale = float(model.knobs.get("vae_scale_factor", VAE_SCALE_FACTOR)) if model is not None else VAE_SCALE_FACTOR
    cfg = request.guidance_scale > 1
    split = bool(request.cfg_split) and bool(family["cfg_split_applies"])
    calls = int(family["denoise_calls_per_step"])
    batch = 1 if split or not cfg or calls > 1 else 2
    forwards = (calls * (2 if split else 1)) if cfg else max(1, calls // 2)
    latent_w, latent_h = request.width / scale, request.height / scale
    extra = 0
    for level in range(int(family["chunk_levels"])):
        tokens = batch * request.num_frames * (latent_w / 2**level) * (latent_h / 2**level)
        extra += int(family["chunked_modules_per_level"]) * max(0, math.ceil(tokens / chunk_tokens) - 1)
    return extra * forwards


@dataclass(frozen=True)
class TimeEstimate:
    """Predicted time of a job's denoising: per step (compute + plan overheads) and once per job."""
    compute_s: float      # FLOPs / effective throughput, one step
    per_step_s: float     # with CFG split, chunking, fp8 and weight streaming
    per_job_s: float      # moves that happen once per job (model offload, encoders under streaming)

    def total_s(self, steps: int) -> float:
        return self.per_step_s * steps + self.per_job_s


def estimate_time(model: MemoryModel, request: GenerationRequest, tflops: float,
                  dtype: str = "fp16") -> TimeEstimate | None:
    """FLOP-based time of the request's plan: traced FLOPs / (TFLOP/s x efficiency), plus what the plan adds:
    more denoiser calls per step (CFG split; a family's calls per step), extra chunk calls, fp8 upcasts, and weight bytes moved over the
    host link (model offload once per job; group offload per UNet call, overlapped with compute; sequential
    per call, not overlapped). Replace by a measurement where one exists."""
    flops = flops_per_step(model, request, dtype)
    if flops is None or tflops <= 0:
        return None
    c = model.constants
    compute = flops / (tflops * 1e12 * c.gpu_efficiency)
    if request.weights_dtype == "fp8":
        compute *= c.fp8_time_factor
    calls = denoise_calls(model, request)
    per_step = compute + (calls - 1) * c.unet_call_overhead_s
    per_step += extra_chunk_calls(request, traced_budget(model, request.chunk_tokens, dtype)
                                  or request.chunk_tokens, model) * c.chunk_call_overhead_s
    per_job = 0.0
    moves = OFFLOAD_BY_NAME[request.offload].moves if model.offload_applies else NEVER
    if moves != NEVER:
        tables = model.tables[dtype]
        bandwidth = c.host_to_device_gib_s * GIB
        denoiser = model.family["fp8_component"]
        off = _on_cpu(request)
        unet = weights_bytes(tables, denoiser, request.weights_dtype, denoiser)[0] / bandwidth
        others = sum(weights_bytes(tables, name, request.weights_dtype, denoiser)[0]
                     for name in tables.weights if name != denoiser and name not in off) / bandwidth
        if moves == ONCE_PER_JOB:
            per_job = unet + others
        elif moves == PER_CALL_OVERLAPPED:
            per_step += compute * (c.group_time_factor - 1) + calls * max(0.0, unet - compute / calls)
            per_job = others
        else:
            per_step += calls * unet / c.sequential_bandwidth_share
            per_job = others / c.sequential_bandwidth_share
    if model.offload_applies and TEXT_ENCODER in _on_cpu(request):
        per_job += text_encode_cpu_seconds(model, dtype)
    return TimeEstimate(compute, per_step, per_job)


TEXT_TOKENS_PER_PROMPT = 512      # Wan's UMT5 context (the longest of the families' text encoders)
PROMPTS_PER_JOB = 2               # the prompt and the negative prompt


def text_encode_cpu_seconds(model: MemoryModel, dtype: str = "fp16") -> float:
    """The text encoder's run on the CPU (the plan part text_encoder_cpu): 2 x parameters x tokens per prompt,
    both prompts, at the host's throughput — about a minute for UMT5-XXL, once per job."""
    entry = model.tables[dtype].weights.get(TEXT_ENCODER, {})
    params = float(entry.get("params") or entry.get("bytes", 0) / DTYPE_BYTES.get(dtype, 2))
    flops = 2.0 * params * TEXT_TOKENS_PER_PROMPT * PROMPTS_PER_JOB
    return flops / (model.constants.host_cpu_tflops * 1e12)


def estimate_seconds_per_step(model: MemoryModel, request: GenerationRequest, tflops: float,
                              dtype: str = "fp16") -> float | None:
    """Predicted seconds per denoising step of the request's plan (see estimate_time)."""
    estimate = estimate_time(model, request, tflops, dtype)
    return estimate.per_step_s if estimate else None
