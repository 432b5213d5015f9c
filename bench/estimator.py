"""Per-call latency of the pure-Python memory estimator (i2v.core.memory.predict) and of the clamp
(i2v.core.clamp.clamp), which run on every slider change / request. Target: predict under 1 ms per call;
a clamp ranks every plan (~130 predictions), target under 50 ms.

Cases: every preset (16:9 input) predicted with its own offload mode, and clamped to a few card sizes (a
request that fits returns at once; one that does not walks the fallback ladder, which costs the most).
Run: .venv/bin/python bench/estimator.py [--quick]. Writes bench/results/estimator.md.
"""
from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, md_table, median, write_result  # noqa: E402

TARGET_US = 1000.0          # predict
CLAMP_TARGET_US = 50_000.0  # clamp: ranks every plan
CARD_GIB = (8, 12, 24, 80)


def count_predicts(call):
    """(result, number of predict() calls the clamp made, through the ladder)."""
    from i2v.core import fallback as ladder_module

    original, count = ladder_module.predict, [0]

    def counting(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)

    ladder_module.predict = counting
    try:
        return call(), count[0]
    finally:
        ladder_module.predict = original


def cases():
    """(label, zero-argument callable) for every measured call."""
    from i2v.configs import load_memory_model, load_presets, load_tiers
    from i2v.core.clamp import DoesNotFit, clamp
    from i2v.core.memory import predict
    from i2v.core.presets import preset_request
    from i2v.core.tiers import select_tier
    from i2v.core.units import GIB

    model = load_memory_model()
    tiers = load_tiers()
    out = []
    for preset in load_presets():
        request = preset_request(preset)
        out.append((f"predict {preset.id} ({request.width}x{request.height}x{request.num_frames})",
                    lambda r=request: predict(model, r)))
    for preset in load_presets():
        request = preset_request(preset)
        for gib in CARD_GIB:
            available = gib * GIB
            tier = select_tier(tiers, "cuda", available)

            def call(r=request, a=available, t=tier):
                try:
                    return clamp(r, a, model, tflops=t.tflops)
                except DoesNotFit:
                    return None

            fitted, calls = count_predicts(call)
            changes = "does not fit" if fitted is None else f"{len(fitted[1])} adjustments"
            out.append((f"clamp {preset.id} to {gib} GiB ({changes}, {calls} predict calls)", call))
    return out


def measure(repeat: int = 5, min_time_s: float = 0.05) -> list[dict]:
    """Per-call microseconds for each case: median and best of `repeat` timeit batches."""
    rows = []
    for label, call in cases():
        call()   # warm caches (first-call attribute lookups)
        number = 1
        while True:   # like Timer.autorange, but with a small time floor so --quick stays quick
            if timeit.timeit(call, number=number) >= min_time_s:
                break
            number *= 2
        per_call = [t / number * 1e6 for t in timeit.repeat(call, number=number, repeat=repeat)]
        rows.append({"case": label, "median_us": median(per_call), "best_us": min(per_call), "calls": number * repeat})
    return rows


def render(rows: list[dict]) -> str:
    predicts = [r["median_us"] for r in rows if r["case"].startswith("predict")]
    clamps = [r for r in rows if r["case"].startswith("clamp")]
    worst = max(r["median_us"] for r in clamps)
    ok = max(predicts) < TARGET_US and worst < CLAMP_TARGET_US
    verdict = "meets" if ok else "MISSES"
    summary = (f"**predict: {median(predicts):.1f} µs per call (median over presets), slowest {max(predicts):.1f} µs; "
               f"clamp: median {median([r['median_us'] for r in clamps]):.1f} µs, slowest {worst:.1f} µs** "
               f"(targets: predict < {TARGET_US:.0f} µs, clamp < {CLAMP_TARGET_US:.0f} µs: {verdict}).")
    explain = ""
    if not ok:
        explain = ("\n\n**Where the time goes.** A clamp costs (number of `predict` calls) x (one `predict`): a "
                   "request that fits needs a few calls, one that must be cut walks the ladder (knob notches, then "
                   "a frame search, then lower resolutions), up to the count shown in the case name. cProfile puts "
                   "most of `predict` in building the per-phase `PhaseFigure`s and `phase_activations` "
                   "(curve interpolation). The slow cases are the big presets on small cards, which the UI "
                   "reaches only when a user asks for far more than the card holds; absolute figures also rise "
                   "several-fold while the machine is shared (compare the best column).")
    table = md_table(["case", "median µs/call", "best µs/call", "calls timed"],
                     [[r["case"], f"{r['median_us']:.1f}", f"{r['best_us']:.1f}", r["calls"]] for r in rows])
    return "\n".join([
        "# Estimator latency (pure Python, no torch)", "",
        machine_line(), "",
        "`predict(model, request)` = per-phase peak from the traced profile; `clamp(request, available, model, "
        "tflops)` = fit the request to a card (rank every plan, take the fastest that fits; search the settings "
        "only when none fits). Presets with a 16:9 input.", "",
        table, "",
        summary + explain,
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter batches (for tests)")
    args = parser.parse_args(argv)
    rows = measure(repeat=3, min_time_s=0.005) if args.quick else measure()
    write_result("estimator.md", render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
