"""GPU run (CUDA only): measured peak memory and seconds per denoise step for every preset, beside the
prediction, and the calibration factors (computed by i2v.calibrate, not re-implemented here).

The full-size I2VGen-XL components are built with random fp16 weights directly on the GPU (no download; the
weights' values do not change memory or time). Per preset (16:9 input, no offload): one warm-up UNet step, then
timed steps (CFG batch 2, as the pipeline runs them) with torch.cuda.max_memory_allocated over weights +
activations, and one VAE decode of `decode_chunk_size` frames. Without CUDA it prints a skip message and writes
a results file saying so. Run: .venv/bin/python bench/gpu_run.py [--steps 3] [--no-calibrate].
Writes bench/results/gpu_run.md (and bench/results/calibration.json when calibrating; copy it to
configs/calibration.json to use it).
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine_line, md_table, median, write_result  # noqa: E402
from i2v.core.units import GIB  # noqa: E402

DTYPE = "fp16"


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - no torch or a broken driver: treat as no GPU
        return False


def _measured(run) -> tuple[int, float]:
    """(torch.cuda.max_memory_allocated during run, wall seconds) with the device synchronised around it."""
    import torch

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with torch.no_grad():
        result = run()
        del result
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(), time.perf_counter() - started


def measure_preset(model, request, steps: int) -> dict:
    import torch

    from i2v import profile

    kwargs = profile._unet_inputs(model, request.width, request.height, request.num_frames, 2)
    step = lambda: model.unet(**kwargs)[0]  # noqa: E731
    try:
        _measured(step)                                  # warm-up: kernel selection, allocator growth
        figures = [_measured(step) for _ in range(steps)]
        latents = profile._zeros((request.decode_chunk_size, profile.LATENT_CHANNELS,
                                  request.height // profile.VAE_SCALE_FACTOR,
                                  request.width // profile.VAE_SCALE_FACTOR), model.vae)
        decode_peak, decode_s = _measured(lambda: model.vae.decode(latents).sample)
    except torch.cuda.OutOfMemoryError as exc:
        return {"error": f"OOM: {str(exc).splitlines()[0][:120]}"}
    finally:
        kwargs = None
        gc.collect()
        torch.cuda.empty_cache()
    return {"step_peak": max(p for p, _ in figures), "step_s": median([s for _, s in figures]),
            "decode_peak": decode_peak, "decode_s": decode_s}


def run(steps: int, calibrate_too: bool) -> str:
    import torch

    from i2v import profile
    from i2v.configs import load_memory_model, load_presets
    from i2v.core.memory import predict
    from i2v.core.presets import preset_request

    memory_model = load_memory_model()
    model = profile.build_meta_model(DTYPE, device="cuda")
    torch.cuda.synchronize()
    weights = torch.cuda.memory_allocated()
    rows = []
    for preset in load_presets():
        request = preset_request(preset)
        predicted = predict(memory_model, request, offload="none", dtype=DTYPE)
        figures = measure_preset(model, request, steps)
        size = f"{request.width}x{request.height} x {request.num_frames}"
        if "error" in figures:
            rows.append([f"{preset.name} {preset.label}", size, f"{predicted.peak_bytes / GIB:.2f}", figures["error"],
                         "", "", "", ""])
            continue
        peak = max(figures["step_peak"], figures["decode_peak"])
        rows.append([f"{preset.name} {preset.label}", size, f"{predicted.peak_bytes / GIB:.2f}",
                     f"{peak / GIB:.2f}", f"{figures['step_peak'] / GIB:.2f}", f"{figures['decode_peak'] / GIB:.2f}",
                     f"{figures['step_s']:.3f}",
                     f"{figures['step_s'] * request.num_inference_steps:.1f} ({request.num_inference_steps} steps)"])
        print(f"{preset.id}: {rows[-1]}", flush=True)
    device = torch.cuda.get_device_name()
    total = torch.cuda.get_device_properties(0).total_memory
    del model
    gc.collect()
    torch.cuda.empty_cache()

    lines = [
        f"# GPU run: {device} ({total / GIB:.1f} GiB)", "",
        machine_line(), "",
        f"Full-size components with random {DTYPE} weights on the GPU ({weights / GIB:.2f} GiB allocated by the "
        f"weights), 16:9 input, no offload, decode_chunk_size as the preset request has it. "
        f"`max_memory_allocated` covers weights + activations (not the CUDA context or allocator cache, which "
        f"the prediction includes, so the prediction should sit above it). Step time: median of {steps} UNet "
        "forwards with CFG batch 2 after one warm-up.", "",
        md_table(["preset", "size x frames", "predicted peak GiB", "measured peak GiB", "step peak GiB",
                  "decode peak GiB", "s / step", "denoise s (preset steps)"], rows), "",
    ]
    if calibrate_too:
        from i2v.calibrate import calibrate

        path = calibrate(out=RESULTS_DIR / "calibration.json")
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        lines += ["## Calibration factors (i2v.calibrate)", "",
                  f"measured / (traced x activation overhead), the largest over {len(data['points']) // 3} "
                  f"configurations; stored in `{Path(path).name}` here — copy it to `configs/calibration.json` to "
                  "use it.", "",
                  md_table(["phase", "factor"], [[k, v] for k, v in sorted(data["factors"].items())]), "",
                  md_table(["width", "height", "frames", "phase", "measured GiB", "predicted GiB"],
                           [[p["width"], p["height"], p["frames"], p["phase"], f"{p['measured_bytes'] / GIB:.3f}",
                             f"{p['predicted_bytes'] / GIB:.3f}"] for p in data["points"]]), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed UNet steps per preset")
    parser.add_argument("--no-calibrate", action="store_true", help="skip the calibration factors")
    args = parser.parse_args(argv)
    if not cuda_available():
        message = "skipped: no CUDA device (torch.cuda.is_available() is False); run bench/gpu_run.py on a GPU machine."
        print(message)
        write_result("gpu_run.md", "\n".join(["# GPU run", "", machine_line(), "", f"**{message}**"]))
        return 0
    write_result("gpu_run.md", run(args.steps, not args.no_calibrate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
