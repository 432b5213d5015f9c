"""Time of a tiny generation through the Ray backend vs the local worker process, on this machine.

    python bench/ray_backend.py [--rounds 5]

Both paths run the same job (tiny model, CPU) through GenerationService: `local` over a WorkerRunner (the
default backend), `ray` over a RayRunner with one CPU actor on a local Ray head. Rounds are interleaved
(the order alternates) and the result is the median of the per-round ratios ray / local, written to
bench/results/ray_backend.md. What it shows: the cost of Ray's hops (object store, actor calls, progress
polling, the MP4 sent back as bytes) on a job this small; not the speed of a GPU.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, md_table, median, write_result  # noqa: E402

VALUES = dict(prompt="a lake", negative_prompt="", resolution=256, num_frames=4, fps=8, num_inference_steps=4,
              guidance_scale=7.5, seed=1)


def timed(service, image) -> float:
    started = time.perf_counter()
    service.generate(image, VALUES)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from PIL import Image

    from i2v.ray_backend import RayRunner
    from i2v.service import GenerationService
    from i2v.worker import WorkerRunner

    image = Image.new("RGB", (320, 240), (40, 120, 200))
    tmp = Path(tempfile.mkdtemp(prefix="i2v-bench-ray-"))
    worker = WorkerRunner("tiny", logs_dir=tmp / "logs")
    # the actor gets both cores: Ray sets its torch threads (OMP_NUM_THREADS) to its num_cpus
    ray_runner = RayRunner("tiny", worker_envs=[{}], num_cpus=2, ray_init={"num_cpus": 2})
    services = {"local": GenerationService(worker, tmp / "local"), "ray": GenerationService(ray_runner, tmp / "ray")}
    try:
        for service in services.values():        # warm-up: model load and first-call costs
            timed(service, image)
        runs = {name: [] for name in services}
        names = list(services)
        for index in range(args.rounds):
            for name in names[index % 2:] + names[:index % 2]:
                runs[name].append(timed(services[name], image))
            print(f"round {index + 1}/{args.rounds}: " + ", ".join(f"{n} {runs[n][-1]:.2f} s" for n in names),
                  flush=True)
    finally:
        worker.shutdown()
        ray_runner.shutdown()
    ratios = [r / local for r, local in zip(runs["ray"], runs["local"])]
    rows = [[n, f"{median(runs[n]):.2f}", f"{min(runs[n]):.2f}", f"{max(runs[n]):.2f}"] for n in names]
    text = "\n".join([
        "# Ray backend vs local worker (tiny model, CPU)", "",
        f"{machine_line()}", "",
        f"Job: {VALUES['resolution']}px, {VALUES['num_frames']} frames, {VALUES['num_inference_steps']} steps; "
        f"{args.rounds} interleaved rounds after one warm-up each.", "",
        md_table(["backend", "median s", "min s", "max s"], rows), "",
        f"**ray / local: median ratio {median(ratios):.2f}** (per round: "
        + ", ".join(f"{r:.2f}" for r in ratios) + ")",
    ])
    write_result("ray_backend.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
