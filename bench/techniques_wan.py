"""Time of Wan 2.2 TI2V-5B's exact token chunking against the plain run, on this machine's CPU.

1. The tiny Wan pipeline (real diffusers classes, tiny widths), 256x256x9 (192 tokens), 2 steps, guidance 5
   (two transformer calls a step), through our own plan code (i2v.pipeline.load_pipeline + sample_latents with
   requests from build_request(..., wan rules).replace(chunk_tokens=N)): plain, then budgets giving 2/4/8 chunks.
2. Full-size transformer blocks: a WanTransformer3DModel from configs/models/wan2.2-ti2v-5b/transformer.json
   (dim 3072, ffn 14336, 24 heads) with num_layers cut from 30 to --full-layers (default 1; random fp32
   weights), ONE forward at 480x480x17 (5 x 15 x 15 = 1,125 tokens), expand_timesteps-style per-token
   timesteps (the image frame's tokens at 0), 512 text tokens; plain, then budgets giving 2/4/8 chunks.
   The transformer blocks are also timed alone (forward hooks): the embedders and the head run unchunked and
   dilute the forward's ratio at 1 layer (they are a small share, and less with all 30 layers).
Rounds are interleaved (every variant once per round, order rotated; bench/techniques.py's helpers), the
ratio variant / plain is taken per round and the median reported, for wall time and for the process's CPU
time (on a shared, loaded machine the wall time also measures the neighbours; the CPU time of a 1-thread run
is the steadier figure, and the target is checked on it). Target: at most 1.10. Every output is compared with
the plain one (max abs difference; must be <= 1e-4).
Run: .venv/bin/python bench/techniques_wan.py [--rounds N] [--full-rounds N] [--skip-full] [--skip-tiny]
     (or bench/techniques.py --family wan2.2-ti2v-5b ...)
"""
from __future__ import annotations

import argparse
import math
import time

from _common import machine_line, md_table, median, write_result
from techniques import TARGET_RATIO, interleaved, ratios

FAMILY = "wan2.2-ti2v-5b"
RESULT_FILE = "techniques_wan.md"
EXACT_TOLERANCE = 1e-4
TINY_SIZE = (256, 256, 9)
FULL_SIZE = (480, 480, 17)
FULL_LAYERS = 1
FULL_CONFIG_LAYERS = 30
CHUNK_COUNTS = (2, 4, 8)
TEXT_TOKENS = 512


def parse_size(text: str) -> tuple[int, int, int]:
    width, height, frames = (int(part) for part in text.lower().split("x"))
    return width, height, frames


def tokens(width: int, height: int, frames: int) -> int:
    """Transformer tokens of a video: latent frames x (latent pixels / 2x2 patch)."""
    from i2v.models.wan_trace import tokens as wan_tokens

    return wan_tokens(width, height, frames)


def budget_variants(seq: int) -> list[tuple[str, int]]:
    """plain, then the budgets that split `seq` tokens into 2, 4 and 8 chunks (fewer for tiny sequences)."""
    variants, seen = [("plain", 0)], set()
    for chunks in CHUNK_COUNTS:
        budget = math.ceil(seq / chunks)
        if budget < seq and budget not in seen:
            seen.add(budget)
            variants.append((f"chunked {budget} tokens ({math.ceil(seq / budget)} chunks)", budget))
    return variants


class Case:
    """One bench case's measurements: seconds per variant per round, block-only seconds, max |diff| to plain."""

    def __init__(self, label: str, seq: int, variants):
        self.label, self.seq, self.variants = label, seq, variants
        self.times: dict[str, list[float]] = {}                              # wall seconds
        self.cpu_times: dict[str, list[float]] = {name: [] for name, _ in variants}   # process CPU seconds
        self.block_times: dict[str, list[float]] = {}                        # CPU seconds in the blocks
        self.max_diff: dict[str, float] = {name: 0.0 for name, _ in variants}
        self.chunked_calls: dict[str, int] = {name: 0 for name, _ in variants}

    def run(self, name: str, work):
        """work() with its CPU time recorded (the wall time is interleaved()'s)."""
        started = time.process_time()
        result = work()
        self.cpu_times[name].append(time.process_time() - started)
        return result

    def record(self, name: str, output, reference, calls: int) -> None:
        difference = float((output.float() - reference.float()).abs().max())
        self.max_diff[name] = max(self.max_diff[name], difference)
        self.chunked_calls[name] += calls

    def as_dict(self) -> dict:
        return {"label": self.label, "tokens": self.seq, "times": self.times, "cpu_times": self.cpu_times, "block_times": self.block_times,
                "max_diff": self.max_diff, "chunked_calls": self.chunked_calls,
                "budgets": dict(self.variants)}


def _name_of(variants, budget: int) -> str:
    return next(name for name, b in variants if b == budget)


def bench_tiny(rounds: int) -> Case:
    import torch
    from PIL import Image

    from i2v import pipeline as pl
    from i2v.core.request import build_request
    from i2v.models import by_name, wan_chunking

    torch.set_num_threads(1)
    loaded = pl.load_pipeline(pl.choose_model("tiny-" + FAMILY), "cpu")
    width, height, frames = TINY_SIZE
    image = Image.new("RGB", (width, height), (90, 140, 200))
    base = build_request((width, height), by_name(FAMILY).rules, prompt="waves on a beach", resolution=width,
                         num_frames=frames, num_inference_steps=2, seed=1)
    seq = tokens(base.width, base.height, base.num_frames)
    case = Case(f"tiny Wan pipeline {base.width}x{base.height}x{base.num_frames}, {seq} tokens, "
                f"{base.num_inference_steps} steps, guidance {base.guidance_scale:g}", seq, budget_variants(seq))

    def sample(budget: int):
        with torch.no_grad():
            return pl.sample_latents(loaded, image, base.replace(chunk_tokens=budget), base.seed, None)

    reference = sample(0)        # warm-up, and the plain latents every run is compared with
    transformer = loaded.pipe.transformer

    def run_one(budget: int):
        name = _name_of(case.variants, budget)
        latents = case.run(name, lambda: sample(budget))
        case.record(name, latents, reference, wan_chunking.chunked_calls(transformer))

    case.times = interleaved(case.variants, run_one, rounds)
    pl.configure_memory_knobs(loaded, base)          # chunking off again
    return case


def build_full_transformer(layers: int):
    """The full-size transformer config with num_layers cut to `layers`, random fp32 weights on the CPU."""
    import json

    import torch
    from diffusers import WanTransformer3DModel

    from i2v.paths import configs_dir

    config = json.loads((configs_dir() / "models" / FAMILY / "transformer.json").read_text(encoding="utf-8"))
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    if config["num_layers"] != FULL_CONFIG_LAYERS:
        raise RuntimeError(f"the full-size config has {config['num_layers']} layers, expected {FULL_CONFIG_LAYERS}")
    config["num_layers"] = layers
    torch.manual_seed(0)
    return WanTransformer3DModel.from_config(config).eval()


def full_inputs(transformer, width: int, height: int, frames: int) -> dict:
    """One pipeline-loop call's inputs at batch 1: random latents, per-token timesteps as with
    expand_timesteps (the first latent frame, the image, at 0; the others at 999), random text embeddings."""
    import torch

    from i2v.models.wan_trace import latent_shape

    config = transformer.config
    f, h, w = latent_shape(width, height, frames)
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn((1, config.in_channels, f, h, w), generator=generator)
    per_frame = (h // config.patch_size[1]) * (w // config.patch_size[2])
    timestep = torch.full((1, f * per_frame), 999.0)
    timestep[:, :per_frame] = 0.0
    text = torch.randn((1, TEXT_TOKENS, config.text_dim), generator=generator)
    return dict(hidden_states=hidden, timestep=timestep, encoder_hidden_states=text, return_dict=False)


def _block_timer(transformer):
    """Forward hooks timing the transformer blocks alone (process CPU time); returns (seconds list, handles)."""
    spent, started = [0.0], [0.0]

    def before(*_):
        started[0] = time.process_time()

    def after(*_):
        spent[0] += time.process_time() - started[0]

    handles = []
    for block in transformer.blocks:
        handles += [block.register_forward_pre_hook(before), block.register_forward_hook(after)]
    return spent, handles


def bench_full(rounds: int, size=FULL_SIZE, layers: int = FULL_LAYERS) -> Case:
    import torch

    from i2v.models.wan_chunking import apply_token_chunking, chunked_calls

    torch.set_num_threads(1)
    transformer = build_full_transformer(layers)
    kwargs = full_inputs(transformer, *size)
    seq = kwargs["timestep"].shape[1]
    case = Case(f"full-size transformer fp32, {layers} of {FULL_CONFIG_LAYERS} layers, one forward "
                + "x".join(map(str, size)) + f", {seq} tokens", seq, budget_variants(seq))
    block_times: dict[str, list[float]] = {name: [] for name, _ in case.variants}
    spent, handles = _block_timer(transformer)

    def forward(budget: int):
        apply_token_chunking(transformer, budget)
        try:
            with torch.no_grad():
                return transformer(**kwargs)[0], chunked_calls(transformer)
        finally:
            apply_token_chunking(transformer, 0)

    try:
        reference, _ = forward(0)

        def run_one(budget: int):
            spent[0] = 0.0
            name = _name_of(case.variants, budget)
            output, calls = case.run(name, lambda: forward(budget))
            block_times[name].append(spent[0])
            case.record(name, output, reference, calls)

        case.times = interleaved(case.variants, run_one, rounds)
    finally:
        for handle in handles:
            handle.remove()
    case.block_times = block_times
    return case


def check(case: Case) -> list[str]:
    """Problems with a case: an output off the plain one, or a chunked variant whose blocks never chunked."""
    problems = []
    for name, budget in case.variants:
        if case.max_diff[name] > EXACT_TOLERANCE:
            problems.append(f"{case.label}: {name} differs from plain by {case.max_diff[name]:.3g}")
        if budget and case.chunked_calls[name] == 0:
            problems.append(f"{case.label}: {name} never ran a chunked block")
    return problems


def ratio_range(times: dict[str, list[float]], name: str) -> str:
    """min-max of the per-round ratios: how far to trust a median on a loaded machine."""
    per_round = [t / p for t, p in zip(times[name], times["plain"])]
    return f"{min(per_round):.2f}-{max(per_round):.2f}"


def render(cases: list[Case], gpu_note: str, full_layers: int = FULL_LAYERS) -> str:
    rows = []
    for case in cases:
        wall_ratios, cpu_ratios = ratios(case.times), ratios(case.cpu_times)
        block_ratios = ratios(case.block_times) if case.block_times else {}
        for name, budget in case.variants:
            block = f"{block_ratios[name]:.3f}" if block_ratios else "—"
            verdict = "—" if name == "plain" else ("meets" if cpu_ratios[name] <= TARGET_RATIO else "MISSES")
            chunks = 1 if not budget else math.ceil(case.seq / budget)
            rows.append([case.label, name, chunks, f"{median(case.times[name]):.3f}", f"{wall_ratios[name]:.3f}",
                         ratio_range(case.times, name), f"{cpu_ratios[name]:.3f}", ratio_range(case.cpu_times, name),
                         block, verdict, f"{case.max_diff[name]:.2e}", gpu_note])
    table = md_table(["case", "technique", "chunks", "median wall s", "wall ratio", "per-round wall ratios",
                      "CPU-time ratio", "per-round CPU-time ratios", "blocks-only CPU-time ratio",
                      f"target <= {TARGET_RATIO} (CPU time)", "max abs diff to plain", "GPU"], rows)
    rounds = ", ".join(f"{len(next(iter(c.times.values())))} for the {c.label.split(',')[0]}" for c in cases)
    problems = [p for case in cases for p in check(case)]
    return "\n".join([
        "# Time cost of Wan 2.2 TI2V-5B's exact token chunking", "",
        machine_line(), "",
        f"Interleaved rounds (every variant once per round, order rotated): {rounds}; ratio = variant / plain "
        "within a round, median over rounds; 1 torch thread. Wall ratios also measure whatever else shares the "
        "cores; CPU-time ratios (this process's user + system time) measure the work, and the target is checked "
        "on them. Every variant's output is compared with the plain "
        f"one (max abs difference, tolerance {EXACT_TOLERANCE:g}). The full-size case keeps the real widths "
        f"(dim 3072, ffn 14336, 24 heads, 512 text tokens) but only {full_layers} "
        f"of the {FULL_CONFIG_LAYERS} blocks (random fp32 weights, CPU time); its blocks-only ratio times the "
        "transformer blocks alone (the embedders and the output head are not chunked). Memory saved is traced, "
        "not timed: see configs/models/wan2.2-ti2v-5b/memory_profile.json.", "",
        table, "",
        "Outputs equal to plain: " + ("yes (all within tolerance)" if not problems else "NO: " + "; ".join(problems)),
        "",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds of the tiny pipeline")
    parser.add_argument("--full-rounds", type=int, default=3, help="interleaved rounds of the full-size forward")
    parser.add_argument("--skip-full", action="store_true", help="only the tiny pipeline")
    parser.add_argument("--skip-tiny", action="store_true", help="only the full-size forward")
    parser.add_argument("--full-size", type=parse_size, default=FULL_SIZE, metavar="WxHxF",
                        help="video size of the full-size forward (default 480x480x17: 1,125 tokens)")
    parser.add_argument("--full-layers", type=int, default=FULL_LAYERS, help="transformer blocks kept (of 30)")
    parser.add_argument("--results-dir", default=None, help="write here instead of bench/results")
    args = parser.parse_args(argv)
    import torch

    gpu_note = "not measured (no GPU)" if not torch.cuda.is_available() else "not measured (CPU bench)"
    started = time.perf_counter()
    cases = []
    if not args.skip_tiny:
        cases.append(bench_tiny(args.rounds))
    if not args.skip_full:
        cases.append(bench_full(args.full_rounds, args.full_size, args.full_layers))
    if not cases:
        parser.error("nothing to run (both --skip-tiny and --skip-full)")
    text = render(cases, gpu_note, args.full_layers) + f"\nBench wall time: {time.perf_counter() - started:.0f} s.\n"
    write_result(RESULT_FILE, text, args.results_dir)
    problems = [p for case in cases for p in check(case)]
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
