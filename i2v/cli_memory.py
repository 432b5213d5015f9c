"""Memory subcommands: estimate, profile-memory, calibrate (doctor: i2v/cli_doctor.py). i2v/cli.py calls add_parsers(subparsers).

Each handler takes the argparse namespace and returns an exit code.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from i2v.core.memory import DTYPES
from i2v.core.settings import (OFFLOAD_MODES, SETTINGS_BY_NAME,
                               WEIGHTS_DTYPES, default)
from i2v.core.units import GIB, format_bytes

EXIT_OK, EXIT_FAIL, EXIT_NEEDS_CUDA = 0, 1, 2


def _aliases() -> list[str]:
    from i2v.models import FAMILIES

    return [family.aliases[0] for family in FAMILIES]


def add_parsers(subparsers) -> None:
    """Register estimate, profile-memory and calibrate on an argparse subparsers object."""
    est = subparsers.add_parser("estimate", help="predicted peak memory per phase for a configuration")
    size = est.add_mutually_exclusive_group(required=True)
    size.add_argument("--width", type=int, help="width in pixels (with --height)")
    size.add_argument("--resolution", type=int, help="short side in pixels; alone means R x R")
    est.add_argument("--height", type=int, help="height in pixels (with --width)")
    est.add_argument("--aspect", default=None, help="with --resolution: aspect W:H, e.g. 16:9")
    est.add_argument("--frames", type=int, required=True, help=SETTINGS_BY_NAME["num_frames"].help)
    est.add_argument("--steps", type=int, default=None,
                     help=SETTINGS_BY_NAME["num_inference_steps"].help + " (default: the model family's)")
    est.add_argument("--guidance", type=float, default=None,
                     help=SETTINGS_BY_NAME["guidance_scale"].help + " (default: the model family's)")
    add_plan_arguments(est)
    est.add_argument("--device-memory", type=float, default=None, metavar="GIB",
                     help="plan for a CUDA card with this much free memory instead of this machine's device")
    est.add_argument("--host-memory", type=float, default=None, metavar="GIB",
                     help="available host RAM (default: this machine's)")
    est.add_argument("--dtype", choices=DTYPES, default=None,
                     help="compute dtype (default: the family's on CUDA — fp16 for I2VGen-XL, bf16 for Wan — "
                          "fp32 on CPU)")
    est.add_argument("--model", default=None,
                     help="the model to predict: auto, an alias (" + ", ".join(_aliases()) + "), a tiny variant, "
                          "a Hugging Face repo id or a local diffusers folder, as for generate (default: the "
                          "full-size I2VGen-XL); a model other than a family's full-size one is traced from its "
                          "own configs once and its figures kept by their hash")
    est.add_argument("--json", action="store_true", help="print JSON")
    est.set_defaults(func=run_estimate)

    prof = subparsers.add_parser("profile-memory", help="trace the full-size model on the meta device (minutes)")
    prof.add_argument("--out", type=Path, default=None, help="where to write (default configs/memory_profile.json; "
                                                             "with --model: a folder, default configs/profiles)")
    prof.add_argument("--model", default=None,
                      help="trace this model (tiny, a repo id or a local folder) from its own configs instead, for "
                           "both dtypes, into <out>/<hash>-<dtype>.json (how configs/profiles/ is made)")
    prof.set_defaults(func=run_profile_memory)

    cal = subparsers.add_parser("calibrate", help="measure real peaks on the GPU and store correction factors")
    cal.add_argument("--out", type=Path, default=None, help="default configs/calibration.json")
    cal.set_defaults(func=run_calibrate)


# ---------------------------------------------------------------- the plan flags (estimate and generate)
def add_plan_arguments(parser) -> None:
    """--offload, --cfg-split, --chunk-tokens, --weights-dtype, --decode-chunk, --vae-tiling, --text-encoder-cpu:
    each given flag
    forces that part of the plan; the rest is chosen automatically (the fastest plan that fits)."""
    group = parser.add_argument_group("plan (each flag forces that part; the rest is chosen to fit)")
    group.add_argument("--offload", choices=OFFLOAD_MODES, default=None,
                       help="where the weights live: none (GPU), model (each component moved in while it "
                            "runs), group (streamed from RAM), sequential (slowest, least memory)")
    group.add_argument("--cfg-split", action=argparse.BooleanOptionalAction, default=None,
                       help="run the two guidance halves as two UNet calls (exact; halves the activations)")
    group.add_argument("--chunk-tokens", type=int, default=None, metavar="N",
                       help="run the UNet in exact chunks of about N tokens (0 = off)")
    group.add_argument("--weights-dtype", choices=WEIGHTS_DTYPES, default=None,
                       help="UNet weight storage: fp16, or fp8 (lossy: changes the pixels slightly)")
    group.add_argument("--decode-chunk", type=int, default=None, metavar="N", help="frames per VAE decode call")
    group.add_argument("--vae-tiling", action=argparse.BooleanOptionalAction, default=None,
                       help="decode with VAE tiling (lossy: seams can show)")
    group.add_argument("--text-encoder-cpu", action=argparse.BooleanOptionalAction, default=None,
                       help="run the text encoder on the CPU (exact; no GPU memory, slower; Wan 2.2's UMT5-XXL)")
    group.add_argument("--forward-chunking", action="store_true", help=argparse.SUPPRESS)   # replaced by --chunk-tokens


def forced_plan(args) -> dict:
    """The plan parts the user forced with flags (validated), by plan key."""
    from i2v.core.plans import check_forced

    if getattr(args, "forward_chunking", False):
        print("note: --forward-chunking is replaced by the exact chunked UNet (--chunk-tokens); ignored",
              file=sys.stderr)
    return check_forced({"offload": args.offload, "cfg_split": args.cfg_split, "chunk_tokens": args.chunk_tokens,
                         "weights_dtype": args.weights_dtype, "decode_chunk": args.decode_chunk,
                         "vae_tiling": args.vae_tiling, "text_encoder_cpu": getattr(args, "text_encoder_cpu", None)})


# ---------------------------------------------------------------- estimate
def _size(args) -> tuple[int, int]:
    if args.width is not None:
        if args.height is None:
            raise SystemExit("estimate: --width needs --height")
        return args.width, args.height
    if args.height is not None:
        raise SystemExit("estimate: --height goes with --width, not --resolution")
    if not args.aspect:
        return args.resolution, args.resolution
    from i2v.core.request import size_for_aspect

    try:
        w, h = (float(x) for x in args.aspect.split(":"))
    except ValueError:
        raise SystemExit(f"estimate: --aspect must look like 16:9, got {args.aspect!r}")
    return size_for_aspect(args.resolution, round(w * 1000), round(h * 1000))


def estimate_family(args):
    """The family of --model (I2VGen-XL without one); read without loading anything."""
    from i2v.models import interpret

    return interpret(getattr(args, "model", None)).family


def estimate_request(args, forced: dict):
    from i2v.core.plans import Plan
    from i2v.core.request import GenerationRequest, check_size

    width, height = _size(args)
    rules = estimate_family(args).rules
    bad_frames = rules.check_frames(args.frames)
    if bad_frames is not None:
        raise SystemExit(f"estimate: --frames: {bad_frames.text('en')}")
    steps = args.steps if args.steps is not None else rules.setting("num_inference_steps").default
    guidance = args.guidance if args.guidance is not None else rules.setting("guidance_scale").default
    request = GenerationRequest(
        prompt="", width=width, height=height, num_frames=args.frames, fps=rules.setting("fps").default,
        num_inference_steps=steps, guidance_scale=float(guidance), resolution=min(width, height),
        plan=Plan(**forced),
    )
    check_size(request)
    return request


def estimate_target(args):
    """(device kind, budget bytes, host RAM bytes or None, dtype, tier) for the estimate."""
    from i2v.configs import load_tiers
    from i2v.core.tiers import select_tier
    from i2v.gpu import host_available_bytes, probe_device

    if args.device_memory is not None:
        kind, budget = "cuda", int(args.device_memory * GIB)
        total = budget
    else:
        device = probe_device()
        kind, budget, total = device.kind, device.budget_bytes, device.total_bytes
    host = int(args.host_memory * GIB) if args.host_memory is not None else host_available_bytes()
    dtype = args.dtype or (estimate_family(args).cuda_dtype if kind == "cuda" else "fp32")
    return kind, budget, (host if kind == "cuda" else None), dtype, select_tier(load_tiers(), kind, total)


def estimate_report(args) -> dict:
    from dataclasses import asdict

    from i2v.configs import full_size_model
    from i2v.core.clamp import DoesNotFit, fit
    from i2v.core.memory import estimate_time, for_device, predict

    forced = forced_plan(args)
    request = estimate_request(args, forced)
    kind, budget, host, dtype, tier = estimate_target(args)
    family = estimate_family(args)
    full = for_device(full_size_model(family), kind)
    model, info = estimate_model(getattr(args, "model", None), dtype, full, kind)

    def fitted(memory, say=True):
        try:
            result = fit(request, budget, memory, dtype, tflops=tier.tflops, host_bytes=host, forced=forced,
                         device_kind=kind, rules=family.rules)
            return result.request, result.prediction, [asdict(a) for a in result.adjustments], True
        except DoesNotFit as exc:
            if say:
                print(f"note: {exc}", file=sys.stderr)
            return request, predict(memory, request, dtype=dtype, device_kind=kind), [], False

    ran, prediction, adjustments, fits = fitted(model)
    timing = estimate_time(model, ran, tier.tflops, dtype)
    extra = {}
    if not info["full_size"]:       # another model: what its family's full-size model would need, separately
        full_ran, full_prediction, full_adjustments, full_fits = fitted(full, say=False)
        extra["full_size"] = {"peak_gib": round(full_prediction.peak_gib, 3), "fits": full_fits,
                              "plan": full_ran.plan.as_dict(), "adjustments": full_adjustments}
    return {**extra, "model": info,
        "fits": fits,
        "peak_gib": round(prediction.peak_gib, 3),
        "host_ram_gib": round(prediction.host_bytes / GIB, 3),
        "plan": ran.plan.as_dict(),
        "adjustments": adjustments,
        "seconds_per_step": round(timing.per_step_s, 3) if timing else None,
        "seconds_total": round(timing.total_s(ran.num_inference_steps), 1) if timing else None,
        "label": prediction.as_dict()["label"],
        "note": ("calibrated on a GPU" if prediction.calibrated else
                 "predicted from traces of the model; not yet calibrated on a GPU"),
        "device": {"kind": kind, "budget_gib": round(budget / GIB, 3), "dtype": dtype, "tier": tier.name,
                   "host_available_gib": round(host / GIB, 3) if host is not None else None},
        "request": ran.as_dict(),
        "phases": prediction.as_dict()["phases"],
        "reserve_bytes": prediction.reserve_bytes,
    }


def estimate_model(spec: str | None, dtype: str, full, kind: str):
    """(memory model for the device kind, info) of --model: the full-size one when not given; else the named
    model's own traced profile (i2v.profiles), or the full-size one with a note where its configs are absent."""
    from i2v.advisor import FULL_SIZE_INFO
    from i2v.configs import memory_model_for
    from i2v.core.memory import for_device

    if not spec:
        return full, dict(FULL_SIZE_INFO)
    from i2v import profiles

    kept = profiles.profile_for(profiles.resolve_spec(spec), dtype)
    info = kept.info()
    if kept.full_size:
        if info["note"]:
            print(f"note: {info['note']}", file=sys.stderr)
        return full, info
    return for_device(memory_model_for(kept.profile, calibrated=False), kind), info


def run_estimate(args) -> int:
    report = estimate_report(args)
    if args.json:
        print(json.dumps(report, indent=1))
        return EXIT_OK
    req, device = report["request"], report["device"]
    print(f"{req['width']}x{req['height']}, {req['num_frames']} frames, {device['dtype']} on {device['kind']} "
          f"with {device['budget_gib']:.2f} GiB — {report['note']}")
    plan = dict(report["plan"])
    if device["kind"] != "cuda" and "weights_dtype" in plan:   # no fp16/fp8 weights off a GPU: say what runs
        plan["weights_dtype"] = device["dtype"]
    print("plan: " + ", ".join(f"{k}={v}" for k, v in plan.items()))
    for p in report["phases"]:
        print(f"  {p['phase']:<13} weights {format_bytes(p['weights_bytes']):>10}  activations "
              f"{format_bytes(p['activation_bytes']):>10}  context {format_bytes(p['context_bytes']):>10}  "
              f"= {format_bytes(p['total_bytes'])}")
    print(f"  reserve {format_bytes(report['reserve_bytes'])}")
    model = report["model"]
    print(f"peak {report['peak_gib']:.2f} GiB, host RAM {report['host_ram_gib']:.2f} GiB, "
          f"{'fits' if report['fits'] else 'does NOT fit'}"
          + ("" if model["kind"] == "full" else f" (model: {model['name']}, {model['profile']} profile)"))
    if report.get("full_size"):
        full = report["full_size"]
        print(f"full-size I2VGen-XL on this device: peak {full['peak_gib']:.2f} GiB, "
              f"{'fits' if full['fits'] else 'does NOT fit'}")
    if report["seconds_per_step"]:
        print(f"time ~{report['seconds_per_step']:.2f} s/step (FLOP-based estimate for the {device['tier']} tier)")
    for a in report["adjustments"]:
        print(f"adjusted {a['field']}: {a['asked']} -> {a['got']} ({a['reason']})")
    return EXIT_OK


# ---------------------------------------------------------------- profile-memory, calibrate
def run_profile_memory(args) -> int:
    from i2v.profile import main_build

    if getattr(args, "model", None):
        from i2v import profiles

        source = profiles.resolve_spec(args.model)
        family = source.family_record
        if source.components is None or source.hash == profiles.full_size_hash(family):
            print(f"{args.model}: {source.note or 'the full-size ' + family.title}; its profile is "
                  f"configs/{family.profile_file}", file=sys.stderr)
            return EXIT_FAIL
        folder = args.out or profiles.committed_dir()
        for dtype in (family.cuda_dtype, "fp32"):
            print(f"wrote {profiles.trace_to(source, dtype, folder / profiles.profile_name(source.hash, dtype))}")
        return EXIT_OK
    path = main_build(args.out, log=lambda line: print(line, flush=True))
    print(f"wrote {path}")
    return EXIT_OK


def run_calibrate(args) -> int:
    from i2v.gpu import cuda_available

    if not cuda_available():
        from i2v.core.words import default_lang, render

        print(render("calibrate_needs_cuda", getattr(args, "lang", None) or default_lang()), file=sys.stderr)
        return EXIT_NEEDS_CUDA
    from i2v.calibrate import calibrate

    path = calibrate(args.out, log=lambda line: print(line, flush=True))
    print(f"wrote {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with only these subcommands (tests; `python -m i2v.cli_memory`)."""
    parser = argparse.ArgumentParser(prog="i2v")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
