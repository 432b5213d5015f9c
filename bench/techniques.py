"""Time of each exact memory technique against the plain run, on this machine's CPU.

1. The tiny model pipeline (real I2VGen-XL code, tiny widths), 128x128, 8 frames, 2 steps, through our own
   plan code (i2v.pipeline.configure_memory_knobs + sample_latents): plain, CFG split, chunking at each budget,
   both.
2. One full-size UNet step (random fp32 weights, built from configs/model/unet.json) at 256x256x8 with CFG:
   plain, CFG split, chunked 16K, chunked 16K + split.
Rounds are interleaved (every variant once per round, order rotated), the ratio variant / plain is taken per
round, and the median ratio reported. Target: at most 1.10. GPU columns say "not measured" unless CUDA is here.
Run: .venv/bin/python bench/techniques.py [--rounds N] [--full-rounds N] [--skip-full]
     .venv/bin/python bench/techniques.py --family wan2.2-ti2v-5b [...]: Wan 2.2's token chunking instead
     (bench/techniques_wan.py, its own options and results/techniques_wan.md)
"""
from __future__ import annotations

import argparse
import time

from _common import machine_line, md_table, median, write_result

TARGET_RATIO = 1.10
TINY_SIZE = (128, 128, 8)
FULL_SIZE = (256, 256, 8)


def tiny_variants():
    return [("plain", {}), ("CFG split", {"cfg_split": True}),
            ("chunked 256 tokens", {"chunk_tokens": 256}), ("chunked 1024 tokens", {"chunk_tokens": 1024}),
            ("chunked 256 + CFG split", {"chunk_tokens": 256, "cfg_split": True})]


def full_variants():
    return [("plain", (False, 0)), ("CFG split", (True, 0)), ("chunked 16K", (False, 16384)),
            ("chunked 16K + CFG split", (True, 16384))]


def interleaved(variants, run_one, rounds: int) -> dict[str, list[float]]:
    """Seconds per variant per round, each round running every variant once in a rotated order."""
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for round_index in range(rounds):
        order = variants[round_index % len(variants):] + variants[:round_index % len(variants)]
        for name, spec in order:
            started = time.perf_counter()
            run_one(spec)
            times[name].append(time.perf_counter() - started)
    return times


def ratios(times: dict[str, list[float]]) -> dict[str, float]:
    plain = times["plain"]
    return {name: median([t / p for t, p in zip(values, plain)]) for name, values in times.items()}


def bench_tiny(rounds: int) -> dict[str, list[float]]:
    import torch
    from PIL import Image

    from i2v import pipeline as pl
    from i2v.core.request import GenerationRequest

    torch.set_num_threads(1)
    loaded = pl.load_pipeline(pl.choose_model("tiny"), device="cpu")
    width, height, frames = TINY_SIZE
    image = Image.new("RGB", (width * 2, height * 2), (90, 140, 200))
    base = GenerationRequest(prompt="waves", width=width, height=height, num_frames=frames, fps=8,
                             num_inference_steps=2, guidance_scale=9.0, seed=1, resolution=min(width, height))

    def run_one(plan):
        pl.sample_latents(loaded, image, base.replace(**plan), 1, None)

    run_one({})   # warm-up
    return interleaved(tiny_variants(), run_one, rounds)


def bench_full(rounds: int) -> dict[str, list[float]]:
    import torch
    from diffusers.models.unets import I2VGenXLUNet

    from i2v import profile
    from i2v.chunking import apply_unet_plan

    torch.manual_seed(0)
    unet = I2VGenXLUNet.from_config(profile._read_config("unet")).eval()
    width, height, frames = FULL_SIZE
    model = profile.MetaModel("fp32", unet, None, None, None)
    kwargs = profile._unet_inputs(model, width, height, frames, 2)
    generator = torch.Generator().manual_seed(0)
    kwargs["sample"] = torch.randn(kwargs["sample"].shape, generator=generator)
    kwargs["image_latents"] = torch.randn(kwargs["image_latents"].shape, generator=generator)

    def run_one(plan):
        apply_unet_plan(unet, *plan)
        with torch.no_grad():
            unet(**kwargs)
        apply_unet_plan(unet, False, 0)

    return interleaved(full_variants(), run_one, rounds)


def render(tiny: dict | None, full: dict | None, gpu_note: str) -> str:
    rows = []
    for label, times in (("tiny pipeline " + "x".join(map(str, TINY_SIZE)) + ", 2 steps", tiny),
                         ("full-size UNet fp32 step " + "x".join(map(str, FULL_SIZE)) + ", CFG", full)):
        if not times:
            continue
        for name, ratio in ratios(times).items():
            if name == "plain":
                rows.append([label, name, f"{median(times[name]):.3f}", "1.000", "—", gpu_note, gpu_note])
                continue
            verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
            rows.append([label, name, f"{median(times[name]):.3f}", f"{ratio:.3f}", verdict, gpu_note, gpu_note])
    table = md_table(["case", "technique", "median s (CPU)", "median ratio to plain", f"target <= {TARGET_RATIO}",
                      "GPU peak", "GPU s/step"], rows)
    rounds = len(next(iter((tiny or full).values())))
    return "\n".join([
        "# Time cost of the exact memory techniques", "",
        machine_line(), "",
        f"Interleaved rounds (every variant once per round, order rotated), {rounds} rounds for the tiny "
        "pipeline; ratio = variant / plain within a round, median over rounds. All variants give the plain "
        "result (tests/test_chunking.py, tests/test_plans_pipeline.py); only time differs. "
        "Memory saved is traced, not timed: see bench/memory_table.md.", "",
        table, "",
    ])


FAMILIES = ("i2vgen-xl", "wan2.2-ti2v-5b")


def main(argv=None) -> int:
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--family", choices=FAMILIES, default=FAMILIES[0],
                         help="the model family (wan2.2-ti2v-5b: bench/techniques_wan.py, its own options)")
    known, rest = chooser.parse_known_args(argv)
    if known.family == "wan2.2-ti2v-5b":       # its techniques, sizes and options differ: a sibling script
        import techniques_wan

        return techniques_wan.main(rest)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], parents=[chooser])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the tiny pipeline")
    parser.add_argument("--full-rounds", type=int, default=3, help="interleaved rounds of the full-size step")
    parser.add_argument("--skip-full", action="store_true", help="only the tiny pipeline")
    args = parser.parse_args(argv)
    import torch

    gpu_note = "not measured (no GPU)" if not torch.cuda.is_available() else "see bench/gpu_run.py"
    tiny = bench_tiny(args.rounds)
    full = None if args.skip_full else bench_full(args.full_rounds)
    write_result("techniques.md", render(tiny, full, gpu_note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
