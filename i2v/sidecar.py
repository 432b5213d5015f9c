"""What a video's JSON sidecar says, composed where the MP4 is written (the worker process, a Ray actor, or this
process), so `video.write_video(..., sidecar=...)` puts both files in place in one call: whole or absent.

The server knows a few things before the run (the seed, the settings it changed to fit, how the input image
was converted): `base()`. The rest comes from the run itself: `complete()`."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from i2v.core.request import GenerationRequest
from i2v.core.words.plan_text import plan_text


def plan_words(plan, lang: str = "en") -> str:
    """The plan that ran, in words from the catalogue (the page renders it in its own language from "plan")."""
    return plan_text(plan.as_dict(), lang, device="cuda")


def base(seed: int, adjustments: list[dict], input_notes: list[str]) -> dict[str, Any]:
    """What the server knows before the run (plain values: it crosses the worker's pipe)."""
    return {"seed": seed, "adjustments": list(adjustments), "input_notes": list(input_notes)}


def complete(known: dict, video_path: Path, asked: GenerationRequest, ran: GenerationRequest, timings: dict,
             attempts: list[dict], denoise_steps_run: int, state: dict, worker: dict | None = None) -> dict:
    """The sidecar: the server's part plus what the run did (settings an out-of-memory fallback changed, the
    plan that ran, timings, attempts, the model and its load report)."""
    report = state.get("report") or {}
    fallback_changes = [{"field": k, "asked": v, "got": getattr(ran, k), "reason": "out-of-memory fallback",
                         "reason_key": "oom"} for k, v in asked.as_dict().items() if getattr(ran, k) != v]
    return {
        "video": Path(video_path).name,
        "parameters": ran.as_dict(),
        "plan": ran.plan.as_dict(),
        "plan_words": plan_words(ran.plan),
        "seed": known["seed"],
        "model": report.get("model", state.get("spec")),
        "family": report.get("family", "i2vgen-xl"),     # which family ran (history and Reuse keep it)
        "repo": report.get("repo"),
        "timings_s": timings,
        "adjustments": known["adjustments"] + fallback_changes,
        "input_notes": known["input_notes"],
        "attempts": len(attempts) + 1,
        "fallbacks": [a["fallback"] for a in attempts if a.get("fallback")],
        "denoise_steps_run": denoise_steps_run,
        "load_report": {k: v for k, v in report.items() if k != "banner"} or None,   # the banner: "warning", once
        **({"worker": worker} if worker else {}),
        "warning": state.get("banner"),
        "created": datetime.now().isoformat(timespec="seconds"),
    }
