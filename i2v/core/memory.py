"""The memory engine's public face: one import for callers, three modules with one job each.

- i2v.core.memory_tables: reading and checking the profile, constants and calibration (what was traced);
- i2v.core.memory_peak: predicted peak GPU memory per phase of a request's plan;
- i2v.core.memory_time: predicted time per step and per job of a request's plan.
Stdlib only: callers parse the JSON/TOML files and pass the dicts in (i2v/configs.py does that).
"""
from __future__ import annotations

from i2v.core.memory_peak import (  # noqa: F401
    PhaseFigure, Prediction, chunked_activations, decode_activations, decoded_bytes_per_value,
    decoded_video_bytes, denoise_table, host_ram_bytes, phase_activations, predict,
)
from i2v.core.memory_tables import (  # noqa: F401
    ACTIVE_COMPONENT, CHUNK_TABLE, CHUNKED_MODULES_PER_LEVEL, CONSTANT_SPECS, DTYPE_BYTES, DTYPES,
    FAMILY_DEFAULTS, FLOAT32_BYTES, FP8_COMPONENT, I2VGEN_DECODED_BYTES_PER_VALUE, I2VGEN_FAMILY,
    MODEL_OFFLOAD_RESIDENT, PHASE_TABLE, PHASES, PROFILE_VERSION, REQUIRED_PHASE_TABLES, RGB_CHANNELS,
    TEXT_ENCODER, TILED_DECODE, UNET_LEVELS, VAE_SCALE_FACTOR, VAE_TILE_SAMPLE_SIZE, Curve, DtypeTables,
    MemoryConstants, MemoryModel, ProfileError, Surface, _pixels, _work, chunk_budgets, family_info, for_device,
    fp8_available, load_model, parse_calibration, parse_constants, parse_family, plan_parts_apply,
    traced_budget, weights_bytes, with_tracer,
)
from i2v.core.memory_time import (  # noqa: F401
    PROMPTS_PER_JOB, TEXT_TOKENS_PER_PROMPT, TimeEstimate, denoise_calls, estimate_seconds_per_step,
    estimate_time, extra_chunk_calls, flops_per_step, text_encode_cpu_seconds,
)
