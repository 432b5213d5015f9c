"""`calibrate`: measure real activation peaks on a CUDA GPU and store correction factors (configs/calibration.json).

The full-size components are built with random weights directly on the GPU (no download); each phase runs
the same inputs as the profile trace, and torch.cuda.max_memory_reserved above the level before the phase is
the measured activation peak (reserved, so allocator rounding and fragmentation are included). The factor
of a phase is measured / (traced x activation_overhead), the largest over the configurations; phases whose
activations are too small to measure meaningfully keep factor 1.
"""
from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Callable

from i2v.configs import CALIBRATION_FILE, load_constants, load_profile
from i2v.core.memory import PHASES, decoded_video_bytes, load_model, phase_activations
from i2v.core.phases import DECODE
from i2v.core.request import GenerationRequest
from i2v.files import write_json_atomic
from i2v.paths import configs_dir
from i2v.core.units import GIB, MIB

CALIBRATION_POINTS = ((512, 512, 8), (512, 512, 16), (768, 448, 16))   # width, height, frames
MIN_MEASURABLE_BYTES = 256 * MIB      # phases below this are dominated by library workspaces
DTYPE = "fp16"


def _cuda_peak(module, run: Callable, inputs=()) -> int:
    import torch

    del module, inputs
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_reserved()
    torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        result = run()
        del result
    torch.cuda.synchronize()
    return max(0, torch.cuda.max_memory_reserved() - base)


def calibrate(out: Path | None = None, log: Callable[[str], None] = print) -> Path:
    import torch

    from i2v import profile

    constants = load_constants()
    memory_model = load_model(load_profile(), constants)
    gpu = profile.build_meta_model(DTYPE, device="cuda")
    ratios: dict[str, list[float]] = {phase: [] for phase in PHASES}
    rows = []
    for width, height, frames in CALIBRATION_POINTS:
        request = GenerationRequest(prompt="", width=width, height=height, num_frames=frames, fps=16,
                                    num_inference_steps=1, guidance_scale=9.0, resolution=min(width, height))
        predicted = phase_activations(memory_model, request, DTYPE)
        measured = {
            "vae_encode": profile.trace_vae_encode(gpu, width, height, peak_fn=_cuda_peak),
            "denoise": profile.trace_unet_step(gpu, width, height, frames, 2, peak_fn=_cuda_peak)[0],
            "vae_decode": profile.trace_vae_decode(gpu, width, height, request.decode_chunk_size, peak_fn=_cuda_peak),
        }
        # The decode prediction includes the kept video frames, which one vae.decode call does not hold.
        predicted[DECODE] -= decoded_video_bytes(request, DTYPE)
        for phase, value in measured.items():
            expected = predicted[phase] * constants.activation_overhead
            if predicted[phase] >= MIN_MEASURABLE_BYTES:
                ratios[phase].append(value / expected)
            rows.append({"width": width, "height": height, "frames": frames, "phase": phase,
                         "measured_bytes": int(value), "predicted_bytes": int(expected)})
            log(f"{width}x{height}x{frames} {phase}: measured {value / GIB:.3f} GiB, "
                f"predicted {expected / GIB:.3f} GiB")
    factors = {phase: round(max(values), 4) for phase, values in ratios.items() if values}
    data = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": DTYPE,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "factors": factors, "points": rows}
    return write_json_atomic(Path(out or configs_dir() / CALIBRATION_FILE), data, indent=1)


def store_measured_terms(terms: dict, path: Path | None = None) -> Path:
    """Add the terms the memory model assumes and bench/gpu_truth.py measured on a GPU (the CUDA context with
    cuBLAS/cuDNN, a conv's workspace, the allocator's reserved/allocated overhead) to the calibration file,
    under "measured_terms" beside the factors: kept with the calibration they were measured with."""
    import json

    path = Path(path or configs_dir() / CALIBRATION_FILE)
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"factors": {}}
    data["measured_terms"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in terms.items()
                              if v is not None}
    return write_json_atomic(path, data, indent=1)
