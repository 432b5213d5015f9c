"""Seconds from Stop to the worker idle, with Stop checked only at the end of a step ("before") and before every
layer inside a step ("after", i2v.cancel_points), through the real worker process on the tiny model.

Two worker processes (`WorkerRunner`, model loaded) run the same chunked, CFG-split job whose steps take
seconds on this CPU; the "before" one is started with `LocalRunner.in_step_cancel = False` (the switch kept for
this measurement). In each round both run the job (order alternating); Stop (`worker.cancel()`, what the
service's Stop calls) is pressed a fraction of a step into step 2 (the fraction rotates over the rounds, the
same for both variants in a round), and the time is taken until the worker answers a memory query after the
job has ended: idle and ready for the next job. Step 1's duration is recorded as well (with and without the
cancel points: their cost).

Run: .venv/bin/python bench/stop_latency.py [--rounds 5] [--threads 1]. Writes bench/results/stop_latency.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, md_table, median, write_result  # noqa: E402

TARGET_S = 1.5
SEED = 7
WIDTH, HEIGHT, FRAMES, STEPS, CHUNK_TOKENS = 512, 384, 16, 3, 4096
FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)     # where in step 2 Stop is pressed, one per round in turn
WAIT_S = 600
CANCEL_GRACE_S = 600.0     # the watchdog must not kill the 'before' worker (default grace: 10 s)


def worker_without_in_step_checks(*args) -> None:
    """The worker process's entry point with Stop checked only at step ends (the 'before' variant)."""
    from i2v.runner import LocalRunner
    from i2v.worker.child import worker_main

    LocalRunner.in_step_cancel = False
    worker_main(*args)


def start_worker(logs_dir: Path, in_step: bool):
    """A loaded WorkerRunner; without in-step checks its process starts through the entry point above."""
    from dataclasses import replace
    from unittest import mock

    from i2v.worker import WorkerRunner, supervisor
    from i2v.worker.watchdog import WatchdogSettings

    watchdog = replace(WatchdogSettings.from_env(), cancel_grace_s=CANCEL_GRACE_S)
    worker = WorkerRunner("tiny", logs_dir=logs_dir, watchdog=watchdog)
    if in_step:
        worker.load()
    else:
        with mock.patch.object(supervisor, "worker_main", worker_without_in_step_checks):
            worker.load()
    return worker


def make_request():
    from i2v.core.request import GenerationRequest

    return GenerationRequest(prompt="a red ball rolling across a table", width=WIDTH, height=HEIGHT,
                             num_frames=FRAMES, fps=8, num_inference_steps=STEPS, guidance_scale=9.0, seed=SEED,
                             resolution=min(WIDTH, HEIGHT)).replace(cfg_split=True, chunk_tokens=CHUNK_TOKENS)


def stop_once(worker, image, request, fraction: float, out_dir: Path) -> dict:
    """One job, Stop pressed `fraction` of a step into step 2; seconds from Stop to the error and to idle."""
    from i2v.core.errors import GenerationCancelled

    step_starts: list[float] = []
    step_two = threading.Event()
    outcome: dict = {}

    def on_event(phase: str, index: int, total: int) -> None:
        if phase == "denoise":
            step_starts.append(time.perf_counter())
            if index == 2:
                step_two.set()

    def job() -> None:
        try:
            worker.run(image, request, SEED, on_event, out_dir=out_dir)
            outcome["error"] = None
        except Exception as exc:  # noqa: BLE001 - recorded below
            outcome["error"] = exc
        outcome["ended"] = time.perf_counter()

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    if not step_two.wait(WAIT_S):
        raise RuntimeError(f"step 2 never started: {outcome}")
    step_s = step_starts[1] - step_starts[0]
    time.sleep(fraction * step_s)            # the Stop's place in the step (the experiment, not a synchronisation)
    stopped = time.perf_counter()
    worker.cancel()
    thread.join(WAIT_S)
    if not isinstance(outcome.get("error"), GenerationCancelled) or worker.stats.restarts:
        raise RuntimeError(f"the job was not cancelled by the worker itself: {outcome}, {worker.stats}")
    if worker.query_one("memory") is None:   # answers only when no job holds it
        raise RuntimeError("the worker is still busy after the job ended")
    idle = time.perf_counter()
    return {"step_s": step_s, "error_s": outcome["ended"] - stopped, "idle_s": idle - stopped,
            "message": str(outcome["error"]), "steps_seen": len(step_starts)}


def make_image():
    import numpy as np
    from PIL import Image

    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, WIDTH)[None, :]
    pixels[..., 1] = np.linspace(0, 255, HEIGHT)[:, None]
    pixels[..., 2] = 96
    return Image.fromarray(pixels)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each stops both variants once)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in the workers (1 = steadier on a shared machine)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)     # inherited by the spawned workers

    image, request = make_image(), make_request()
    tmp = Path(tempfile.mkdtemp(prefix="i2v-bench-stop-"))
    workers = {}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    try:
        for name, in_step in (("before", False), ("after", True)):
            workers[name] = start_worker(tmp / f"logs-{name}", in_step)
        for index in range(args.rounds):
            fraction = FRACTIONS[index % len(FRACTIONS)]
            order = ("before", "after") if index % 2 == 0 else ("after", "before")
            for name in order:
                runs[name].append({"fraction": fraction,
                                   **stop_once(workers[name], image, request, fraction, tmp / name)})
            print(f"round {index + 1}/{args.rounds} (Stop at {fraction:.0%} of step 2): " + ", ".join(
                f"{n} {runs[n][-1]['idle_s']:.3f} s (step {runs[n][-1]['step_s']:.1f} s)" for n in runs), flush=True)
    finally:
        for worker in workers.values():
            worker.shutdown()
    write_result("stop_latency.md", report(runs, args))
    return 0


def report(runs: dict[str, list[dict]], args) -> str:
    before, after = runs["before"], runs["after"]
    med = {name: median([r["idle_s"] for r in rows]) for name, rows in runs.items()}
    step = {name: median([r["step_s"] for r in rows]) for name, rows in runs.items()}
    verdict = "meets" if med["after"] <= TARGET_S else "MISSES"
    rows = [[i + 1, f"{b['fraction']:.0%}", f"{b['step_s']:.2f}", f"{b['idle_s']:.3f}", f"{a['step_s']:.2f}",
             f"{a['idle_s']:.3f}", f"{a['error_s']:.3f}"] for i, (b, a) in enumerate(zip(before, after))]
    rows.append(["**median**", "", f"{step['before']:.2f}", f"**{med['before']:.3f}**", f"{step['after']:.2f}",
                 f"**{med['after']:.3f}**", f"{median([a['error_s'] for a in after]):.3f}"])
    messages = sorted({f"{name}: {r['message']!r}" for name, rows_ in runs.items() for r in rows_})
    return "\n".join([
        "# Stop to idle: Stop checked at step ends (before) and before every layer (after)", "",
        machine_line(), "",
        f"Command: `.venv/bin/python bench/stop_latency.py --rounds {args.rounds} --threads {args.threads}`", "",
        f"Job: tiny model through the worker process (`WorkerRunner`, model loaded), {WIDTH}x{HEIGHT}, {FRAMES} "
        f"frames, {STEPS} steps, CFG split, UNet chunked at {CHUNK_TOKENS} tokens, {args.threads} torch thread(s) "
        "in the workers. Stop (`worker.cancel()`) is pressed a fraction of a step into step 2 (the same fraction "
        "for both variants in a round, rotating over the rounds, order alternating); the time runs until the "
        "worker answers a memory query after the job ended (idle, model still loaded). *before*: a worker "
        "started with `LocalRunner.in_step_cancel = False` (Stop checked only when a step starts); *after*: "
        "the default (i2v.cancel_points: a check before each attention, feed-forward and convolution of the "
        "UNet and VAE). Both workers get a "
        f"{CANCEL_GRACE_S:g} s cancel grace: with the app's default (10 s) the watchdog kills a worker still "
        "running 10 s after Stop, which the 'before' one is whenever the rest of the step takes longer; no worker "
        "was restarted in these runs.", "",
        md_table(["round", "Stop at", "step s (before)", "Stop→idle s (before)", "step s (after)",
                  "Stop→idle s (after)", "Stop→error s (after)"], rows), "",
        f"**Median Stop→idle: before {med['before']:.3f} s, after {med['after']:.3f} s** (target <= {TARGET_S} s: "
        f"{verdict}). Median step {step['before']:.2f} s without the cancel points, {step['after']:.2f} s with them "
        f"(ratio {step['after'] / step['before']:.3f}; one step per job and a shared machine: a rough figure).", "",
        "Errors seen: " + "; ".join(messages) + ".",
    ])


if __name__ == "__main__":
    sys.exit(main())
