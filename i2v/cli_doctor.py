"""`doctor`: the machine, the weights found, and the presets of the model that would run, with their figures.
Registered by i2v/cli_memory.py (the memory commands); torch-free at import.
"""
from __future__ import annotations

import json
import os

from i2v.cli_memory import EXIT_OK, estimate_model
from i2v.core import env
from i2v.core.settings import MODEL_REPO_ID
from i2v.core.units import format_bytes


def attention_backend(lang: str = "en") -> str:
    from i2v.core.words import render
    from i2v.pipeline import xformers_importable   # the loader's own test, so doctor and loader agree

    return render("doctor_attention_xformers" if xformers_importable() else "doctor_attention_sdpa", lang)


def ffmpeg_path() -> str | None:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - missing package or binary: report as absent
        return None


def model_in_cache(repo_id: str = MODEL_REPO_ID) -> bool:
    """Local HF cache lookup only; never touches the network."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "model_index.json")
        return isinstance(found, str)
    except Exception:  # noqa: BLE001
        return False


def doctor_report(spec: str | None = None, lang: str = "en") -> dict:
    """The machine, and the presets of the model `spec` names (its family's presets, its own figures: the tiny
    model's when that is what would run), with every family's weights found or not."""
    from i2v.configs import full_size_model, load_presets, load_tiers
    from i2v.core.memory import for_device
    from i2v.core.presets import recommend_preset
    from i2v.core.tiers import select_tier
    from i2v.gpu import host_available_bytes, probe_device
    from i2v.models import FAMILIES, interpret

    spec = spec or env.value("I2V_MODEL", os.environ) or "auto"
    family = interpret(spec).family
    device = probe_device()
    dtype = family.cuda_dtype if device.kind == "cuda" else "fp32"
    full = for_device(full_size_model(family), device.kind)
    model, info = estimate_model(spec, dtype, full, device.kind)
    tier = select_tier(load_tiers(), device.kind, device.total_bytes)
    host = host_available_bytes() if device.kind == "cuda" else None
    best, statuses = recommend_preset(load_presets(family=family), model, device.budget_bytes, dtype, tier=tier,
                                      host_bytes=host, rules=family.rules)
    return {
        "device": device.as_dict(),
        "dtype": dtype,
        "tier": tier.name,
        "attention": attention_backend(lang),
        "ffmpeg": ffmpeg_path(),
        "model_cached": model_in_cache(family.repo_id),
        "model_repo": family.repo_id,
        "model": info,
        "families": [{"family": f.name, "title": f.title, "repo": f.repo_id, "cached": model_in_cache(f.repo_id),
                      "tiny": f.tiny_alias} for f in FAMILIES],
        "calibrated": model.calibrated,
        "recommended_preset": best.preset.id if best else None,
        "presets": [{"id": s.preset.id, "name": s.preset.name, "status": s.status, "label": s.label,
                     "offload": s.request.offload, "plan": s.request.plan.as_dict(), "peak_gib": round(s.peak_gib, 2),
                     "estimated_seconds": round(s.seconds_estimate) if s.seconds_estimate else None}
                    for s in statuses],
    }


def run_doctor(args) -> int:
    report = doctor_report(getattr(args, "model", None), getattr(args, "lang", "en"))
    if args.json:
        print(json.dumps(report, indent=1))
        return EXIT_OK
    d = report["device"]
    print(f"device      {d['kind']} {d['name']} ({report['tier']} tier, {report['dtype']})")
    print(f"memory      total {format_bytes(d['total_bytes'])}, free {format_bytes(d['free_bytes'])}, "
          f"usable for a job {format_bytes(d['budget_bytes'])}")
    print(f"attention   {report['attention']}")
    print(f"ffmpeg      {report['ffmpeg'] or 'NOT FOUND'}")
    for f in report["families"]:
        print(f"model       {f['title']} ({f['repo']}): {'in the local cache' if f['cached'] else 'not downloaded'}")
    print(f"figures of  {report['model']['name']} ({report['model']['profile']} profile)")
    kind = "calibrated" if report["calibrated"] else "predicted (uncalibrated)"
    print(f"presets     ({kind} peaks; time estimated from FLOPs)")
    for p in report["presets"]:
        eta = f", ~{p['estimated_seconds'] / 60:.0f} min" if p["estimated_seconds"] else ""
        print(f"  {p['id']:<9} {p['name']:<6} {p['label']:<45} {p['peak_gib']:6.2f} GiB{eta}")
    print(f"recommended {report['recommended_preset'] or 'none fits'}")
    return EXIT_OK


def add_parsers(subparsers) -> None:
    """Register `doctor` on main.py's subparsers (i2v/cli.py calls it)."""
    doc = subparsers.add_parser("doctor", help="device, memory, attention, ffmpeg, model cache, recommendation")
    doc.add_argument("--json", action="store_true", help="print JSON")
    doc.add_argument("--model", default=None,
                     help="the model whose figures and presets to report, as for generate (default: env I2V_MODEL "
                          "or auto: on a machine without the weights, the tiny model's own figures)")
    doc.set_defaults(func=run_doctor)

