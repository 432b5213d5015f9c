"""Overhead of the app's generation path over a bare I2VGenXLPipeline call, and of the worker process boundary.

Three ways to make the same video with the tiny model (same weights, seed and parameters), interleaved in
rotating order so a busy shared machine hits all of them alike; medians of the per-round ratios:

* bare     - `I2VGenXLPipeline(**build_tiny_components())(..., output_type="np")`, frames -> uint8, and a plain
             `imageio_ffmpeg.write_frames` MP4 write (libx264, yuv420p, the app's quality setting).
* service  - `GenerationService(LocalRunner("tiny")).generate(...)`: validation, phase hooks, our decode loop,
             atomic MP4 write and the JSON sidecar (everything the UI/API/CLI call goes through).
* worker   - the same service over `WorkerRunner` (the app's real set-up: a spawned worker process that
             owns the model; messages and events cross a pipe), model already loaded.

Run: .venv/bin/python bench/overhead.py [--rounds 7] [--profile]. Writes bench/results/overhead.md.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, md_table, median, write_result  # noqa: E402

TARGET_RATIO = 1.05
SEED = 1234
IMAGE_SIZE = (640, 480)          # 4:3 input
VALUES = dict(prompt="a red ball rolling across a table", resolution=256, num_frames=8, num_inference_steps=2,
              seed=SEED)


def make_image():
    import numpy as np
    from PIL import Image

    width, height = IMAGE_SIZE
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height)[:, None]
    pixels[..., 2] = 96
    return Image.fromarray(pixels)


class Bare:
    """The plain diffusers call plus a plain MP4 write: the floor the app is compared with."""

    def __init__(self, request, out_dir: Path):
        import torch
        from diffusers import I2VGenXLPipeline

        from i2v.tiny_model import build_tiny_components

        self.request, self.out_dir, self.count = request, out_dir, 0
        self.pipe = I2VGenXLPipeline(**build_tiny_components()).to("cpu", torch.float32)
        self.pipe.set_progress_bar_config(disable=True)
        encoder = self.pipe.text_encoder
        if not hasattr(encoder, "text_model"):   # transformers 5 compatibility alias (docs/facts.md), not an optimisation
            object.__setattr__(encoder, "text_model", encoder)

    def __call__(self, image) -> dict:
        import imageio_ffmpeg
        import numpy as np
        import torch

        from i2v.video import X264_QUALITY

        r = self.request
        started = time.perf_counter()
        generator = torch.Generator(device="cpu").manual_seed(SEED)
        torch.manual_seed(SEED)
        frames = self.pipe(
            prompt=r.prompt, image=image, negative_prompt=r.negative_prompt or None, height=r.height, width=r.width,
            num_frames=r.num_frames, target_fps=r.fps, num_inference_steps=r.num_inference_steps,
            guidance_scale=r.guidance_scale, generator=generator, output_type="np",
        ).frames[0]
        frames = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
        sampled = time.perf_counter()
        self.count += 1
        writer = imageio_ffmpeg.write_frames(str(self.out_dir / f"bare_{self.count}.mp4"), (r.width, r.height),
                                             fps=r.fps, codec="libx264", pix_fmt_out="yuv420p", quality=X264_QUALITY,
                                             macro_block_size=2)
        writer.send(None)
        for frame in frames:
            writer.send(frame.tobytes())
        writer.close()
        done = time.perf_counter()
        return {"total": done - started, "pipeline": sampled - started, "save": done - sampled}


def service_call(service, image) -> dict:
    started = time.perf_counter()
    result = service.generate(image, dict(VALUES))
    total = time.perf_counter() - started
    return {"total": total, **{f"runner_{k}": v for k, v in result.timings.items() if k != "total"}}


def profile_text(fn, image, label: str, limit: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn(image)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(limit)
    body = "\n".join(line for line in stream.getvalue().splitlines() if line.strip())
    return f"### cProfile: {label} (top {limit} by cumulative time)\n\n```\n{body}\n```\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (each runs all three paths)")
    parser.add_argument("--profile", action="store_true", help="add cProfile listings even within the target")
    parser.add_argument("--no-worker", action="store_true", help="skip the worker-process path")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in this process and the worker (1 = steadier on a shared machine)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)     # inherited by the spawned worker

    import torch

    torch.set_num_threads(args.threads)

    from i2v.core.request import build_request
    from i2v.runner import LocalRunner
    from i2v.service import GenerationService
    from i2v.worker import WorkerRunner

    image = make_image()
    request = build_request(image.size, **VALUES)
    tmp = Path(tempfile.mkdtemp(prefix="i2v-bench-overhead-"))
    bare = Bare(request, tmp)
    local = GenerationService(LocalRunner("tiny", device="cpu"), tmp / "local")
    local.runner.load()
    paths = {"bare": bare, "service": lambda img: service_call(local, img)}
    worker = None
    if not args.no_worker:
        worker = WorkerRunner("tiny", logs_dir=tmp / "logs")
        worker.load()
        remote = GenerationService(worker, tmp / "worker")
        paths["worker"] = lambda img: service_call(remote, img)
    names = list(paths)
    try:
        for name in names:                      # warm-up: first calls pay one-off lazy imports and allocations
            paths[name](image)
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for index in range(args.rounds):
            order = names[index % len(names):] + names[:index % len(names)]
            for name in order:
                runs[name].append(paths[name](image))
            print(f"round {index + 1}/{args.rounds}: " + ", ".join(f"{n} {runs[n][-1]['total']:.3f} s" for n in names),
                  flush=True)
        profiles = []
        totals = {n: [r["total"] for r in runs[n]] for n in names}
        ratios = [s / b for s, b in zip(totals["service"], totals["bare"])]
        if args.profile or median(ratios) > TARGET_RATIO:
            profiles = [profile_text(paths["service"], image, "service path"), profile_text(bare, image, "bare path")]
    finally:
        if worker is not None:
            worker.shutdown()

    text = report(request, runs, totals, ratios, profiles, args.rounds, torch.get_num_threads())
    write_result("overhead.md", text)
    return 0


def report(request, runs, totals, ratios, profiles, rounds, threads) -> str:
    med_ratio = median(ratios)
    verdict = "meets" if med_ratio <= TARGET_RATIO else "MISSES"
    rows = []
    for index in range(rounds):
        row = [index + 1, f"{totals['bare'][index] * 1e3:.0f}", f"{totals['service'][index] * 1e3:.0f}",
               f"{ratios[index]:.3f}"]
        if "worker" in totals:
            row += [f"{totals['worker'][index] * 1e3:.0f}", f"{totals['worker'][index] / totals['service'][index]:.3f}"]
        rows.append(row)
    header = ["round", "bare ms", "service ms", "service/bare"]
    if "worker" in totals:
        header += ["worker ms", "worker/service"]
    med_row = ["**median**", f"{median(totals['bare']) * 1e3:.0f}", f"{median(totals['service']) * 1e3:.0f}",
               f"**{med_ratio:.3f}**"]
    lines = [
        "# Overhead of the app's generation path (tiny model, CPU)", "",
        machine_line(), "",
        f"Request: {request.width}x{request.height} (4:3 input {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, resolution "
        f"{request.resolution}), {request.num_frames} frames, {request.num_inference_steps} steps, guidance "
        f"{request.guidance_scale}, seed {SEED}; {rounds} interleaved rounds after one warm-up each, order rotated "
        f"per round; {threads} torch threads.", "",
        "* **bare**: `I2VGenXLPipeline(**build_tiny_components())(..., output_type=\"np\")` + uint8 + "
        "`imageio_ffmpeg.write_frames` (libx264, yuv420p, same quality and macro-block setting as the app, so the same pixels are encoded).",
        "* **service**: `GenerationService(LocalRunner(\"tiny\")).generate(image, values)` — validation, phase "
        "hooks, chunked decode, atomic MP4 + JSON sidecar.",
        "* **worker**: the same service over `WorkerRunner` (spawned worker process, model already loaded).", "",
    ]
    if "worker" in totals:
        worker_ratios = [w / s for w, s in zip(totals["worker"], totals["service"])]
        diffs = [(w - s) * 1e3 for w, s in zip(totals["worker"], totals["service"])]
        med_row += [f"{median(totals['worker']) * 1e3:.0f}", f"**{median(worker_ratios):.3f}**"]
    rows.append(med_row)
    lines += [md_table(header, rows), ""]
    lines += [f"**Service over bare: median ratio {med_ratio:.3f}** (target <= {TARGET_RATIO}: {verdict}); "
              f"median difference {median([(s - b) * 1e3 for s, b in zip(totals['service'], totals['bare'])]):.0f} ms; "
              f"ratio of the fastest runs {min(totals['service']) / min(totals['bare']):.3f} "
              f"({min(totals['service']) * 1e3:.0f} / {min(totals['bare']) * 1e3:.0f} ms)."]
    if "worker" in totals:
        lines += ["", f"**Process boundary (worker over in-process service): median +{median(diffs):.0f} ms per "
                      f"generation, ratio {median(worker_ratios):.3f}** (fastest runs: "
                      f"{min(totals['worker']) * 1e3:.0f} vs {min(totals['service']) * 1e3:.0f} ms)."]
    phase_rows = []
    for key in ("pipeline", "save"):
        phase_rows.append([f"bare {key}", f"{median([r[key] for r in runs['bare']]) * 1e3:.0f}"])
    for key in sorted(k for k in runs["service"][0] if k.startswith("runner_")):
        phase_rows.append([f"service {key[7:]}", f"{median([r[key] for r in runs['service']]) * 1e3:.0f}"])
    lines += ["", "Median phase times (ms; the service's come from its own `timings`):", "",
              md_table(["phase", "ms"], phase_rows), ""]
    if profiles:
        lines += ["## Where the time goes", "",
                  "cProfile of one run of each path (cProfile itself slows Python-heavy code, so compare the "
                  "shapes, not the totals).", ""] + profiles
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
