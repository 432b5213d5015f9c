"""Issue 24.5: Stop takes effect inside a denoising step (before the next layer), not at the step's end.

Real code on the tiny model: a chunked, CFG-split job is stopped in the middle of a step through the runner's
own cancel(); it must end with the cancellation error before the step's remaining UNet sub-block calls ran
(counted by forward pre-hooks), free what the step had allocated, and leave the runner (and a real worker
process) ready for the next job with the same model loaded. The Stop is placed by a counting hook that pauses
the job at a chosen sub-block call until the test has pressed Stop: events with bounded waits, no sleeps, no
timings asserted.
"""
from __future__ import annotations

import gc
import threading
import weakref

import pytest
import torch
from PIL import Image

from i2v.core.request import GenerationRequest
from i2v.core.errors import GenerationCancelled
from i2v.runner import READY

WAIT_S = 300            # bounds, not waits: a busy 2-core machine runs a tiny step in seconds
STEPS = 2


def request(steps: int = STEPS, **plan) -> GenerationRequest:
    values = dict(cfg_split=True, chunk_tokens=64)
    values.update(plan)
    return GenerationRequest(prompt="a boat", width=128, height=96, num_frames=4, fps=8, num_inference_steps=steps,
                             guidance_scale=7.5, seed=5, resolution=96).replace(**values)


IMAGE = Image.new("RGB", (256, 192), (120, 60, 30))


class SubBlockCounter:
    """A forward pre-hook on every sub-module of the UNet counting calls; at call `pause_at` it tells the test
    (reached) and holds the job until the test has pressed Stop (go). Keeps weak references to the activations
    it sees, to check they are freed."""

    def __init__(self, unet, pause_at: int | None = None):
        self.calls, self.pause_at = 0, pause_at
        self.reached, self.go = threading.Event(), threading.Event()
        self.activations: list[weakref.ref] = []
        self._handles = [m.register_forward_pre_hook(self._hook) for m in unet.modules() if m is not unet]

    def _hook(self, _module, args) -> None:
        self.calls += 1
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() >= 4:
            self.activations.append(weakref.ref(args[0]))
        if self.calls == self.pause_at:
            self.reached.set()
            assert self.go.wait(WAIT_S), "the test never pressed Stop"

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def hook_count(runner) -> int:
    pipe = runner.load().pipe
    return sum(len(m._forward_pre_hooks) for model in (pipe.unet, pipe.vae) for m in model.modules())


def run_job(runner, req, out_dir, on_event=None):
    """runner.run in a thread: (thread, outcome dict with 'output' or 'error')."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["output"] = runner.run(IMAGE, req, req.seed, on_event, out_dir=out_dir)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture(scope="module")
def calibration(tiny_runner, tmp_path_factory):
    """Sub-block calls at the start of each step of the whole job (all steps make the same calls)."""
    unet = tiny_runner.load().pipe.unet
    counter = SubBlockCounter(unet)
    starts: list[int] = []

    def on_event(phase, index, total):
        if phase == "denoise":
            starts.append(counter.calls)

    try:
        tiny_runner.run(IMAGE, request(), 5, on_event, out_dir=tmp_path_factory.mktemp("calibration"))
    finally:
        counter.remove()
    per_step = starts[1] - starts[0]
    assert per_step > 1000 and len(starts) == STEPS      # many sub-block calls (chunks) per step
    return starts, per_step


def stop_mid_step(runner, out_dir, pause_at: int):
    """Run the job, press Stop (runner.cancel) when the UNet reaches sub-block call `pause_at`, wait for the end.
    Returns (counter, outcome, denoise events seen); gc stays off so nothing is freed behind our back."""
    counter = SubBlockCounter(runner.load().pipe.unet, pause_at)
    steps_seen: list[int] = []
    gc.disable()
    try:
        thread, outcome = run_job(runner, request(), out_dir,
                                  lambda phase, index, total: steps_seen.append(index) if phase == "denoise" else None)
        assert counter.reached.wait(WAIT_S), outcome
        stopped_at = counter.calls
        runner.cancel()
        counter.go.set()
        thread.join(WAIT_S)
        assert not thread.is_alive()
        counter.after_stop = counter.calls - stopped_at
        counter.alive = [ref for ref in counter.activations if ref() is not None]
    finally:
        gc.enable()
        counter.remove()
    return counter, outcome, steps_seen


def test_stop_inside_a_step_ends_the_job_before_the_step_ends(tiny_runner, calibration, tmp_path):
    starts, per_step = calibration
    hooks_before = hook_count(tiny_runner)
    loaded = tiny_runner.load()
    pause_at = starts[1] + per_step // 4          # step 2, inside the first of its two CFG halves
    counter, outcome, steps_seen = stop_mid_step(tiny_runner, tmp_path / "out", pause_at)

    error = outcome.get("error")
    assert isinstance(error, GenerationCancelled), outcome
    assert str(error) == "cancelled during denoise"        # the step check's own error
    assert steps_seen == [1, 2]
    assert counter.after_stop <= 20                          # at the next cancel point: a few modules on
    assert counter.calls < starts[1] + per_step // 2         # the step, and its second CFG half, never finished
    assert not counter.alive, f"{len(counter.alive)} activations of the stopped step still alive"
    assert not list((tmp_path / "out").glob("*.mp4"))

    # ready for the next job: same model, no cancel points left, the next job runs to its video
    assert tiny_runner.state().status == READY and tiny_runner.load() is loaded
    assert hook_count(tiny_runner) == hooks_before
    output = tiny_runner.run(IMAGE, request(steps=1), 5, out_dir=tmp_path / "next")
    assert output.video_path.is_file() and output.denoise_steps_run == 1


def test_without_in_step_checks_the_same_stop_waits_for_the_step_end(tiny_runner, calibration, tmp_path):
    """The switch the benchmark uses to measure 'before': the same Stop then lands at the end of the step."""
    starts, per_step = calibration
    tiny_runner.in_step_cancel = False
    try:
        counter, outcome, _ = stop_mid_step(tiny_runner, tmp_path / "out", starts[1] + per_step // 4)
    finally:
        del tiny_runner.in_step_cancel                       # back to the class default (on)
    assert isinstance(outcome.get("error"), GenerationCancelled), outcome
    assert str(outcome["error"]) == "cancelled after denoising"
    assert counter.calls == starts[1] + per_step             # the whole step ran


def test_cancel_points_come_off_and_change_nothing(tiny_runner):
    from i2v import cancel_points

    pipe = tiny_runner.load().pipe
    calls = []
    hooks_before = hook_count(tiny_runner)
    with cancel_points.installed(pipe, lambda: calls.append(1)) as count:
        assert count > 0 and hook_count(tiny_runner) == hooks_before + count
        sample = torch.randn(1, 4, 1, 8, 8)
        with torch.no_grad():
            pipe.vae.decode(sample[:, :, 0])
    assert hook_count(tiny_runner) == hooks_before and len(calls) > 10
    with cancel_points.installed(pipe, None) as count:
        assert count == 0 and hook_count(tiny_runner) == hooks_before


def test_worker_process_stops_inside_the_step_and_runs_the_next_job(tmp_path):
    """Through the real worker process: Stop pressed when step 1 of 1 starts ends the job inside that step
    (the step-end check would say 'cancelled after denoising'); the same worker, not a replacement, then makes
    the next video."""
    from i2v.worker import WorkerRunner

    worker = WorkerRunner("tiny", tmp_path / "logs")
    try:
        worker.load()
        pid = worker.pid

        def on_event(phase, index, total):
            if phase == "denoise":
                worker.cancel()

        slow = request(steps=1).replace(width=256, height=192, num_frames=8, chunk_tokens=48)
        with pytest.raises(GenerationCancelled, match="^cancelled during denoise$"):
            worker.run(IMAGE, slow, 5, on_event, out_dir=tmp_path / "out")
        output = worker.run(IMAGE, request(steps=1), 5, out_dir=tmp_path / "next")
        assert output.video_path.is_file()
        assert worker.pid == pid and worker.stats.restarts == 0
    finally:
        worker.shutdown()


def test_pacer_keeps_the_host_at_most_two_stretches_ahead():
    """On CUDA the cancel points also bound how far the host queues kernels ahead of the GPU (what is queued
    when Stop is seen still runs): an event every `every` points, the host waits for the one two stretches
    back. Checked here with stand-in events (the CUDA path itself needs a GPU)."""
    from i2v.cancel_points import Pacer

    made, waited = [], []

    class Event:
        def __init__(self):
            self.index = len(made)
            made.append(self)

        def synchronize(self):
            waited.append(self.index)

    pace = Pacer(4, Event)
    for _ in range(4 * 10):
        pace()
    assert len(made) == 10 and waited == list(range(8))          # event k waited for when event k+2 is made
    assert len(pace.pending) == 2
