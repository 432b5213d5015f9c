"""Live preview in a run: every family's tiny model sends a strip after every N steps, and the frames are the
same as without it (the tap only reads); through the service and a worker process, a page's session that asked
gets ProgressUpdates carrying strips, and its board is empty once the video is there."""
from __future__ import annotations

import time

import numpy as np
import pytest

from i2v import preview
from i2v.core.request import GenerationRequest
from i2v.preview_tap import PreviewTap
from tests.family_tools import gradient_image, timings_fixture

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

STEPS, SEED = 4, 11
TIMINGS: dict[str, float] = {}
report_timings = timings_fixture(TIMINGS)
# (model, width, height, frames, fps): the smallest sizes each family's rules allow
CASES = [("tiny", 64, 64, 8, 8), ("tiny-wan2.2-ti2v-5b", 64, 64, 9, 24), ("tiny-ltx-video", 64, 64, 17, 25)]


def frames_of(loaded, request, tap=None):
    from i2v import pipeline as pl

    picture = gradient_image(request.width, request.height, square=False)
    latents = pl.sample_latents(loaded, picture, request, SEED, None, None, tap)
    return pl.decode_frames(loaded, latents, request, None)


@pytest.mark.parametrize("model, width, height, frames, fps", CASES, ids=[case[0] for case in CASES])
def test_preview_sends_strips_and_leaves_the_pixels_alone(model, width, height, frames, fps):
    from i2v.runner import LocalRunner

    loaded = LocalRunner(model).load()
    request = GenerationRequest(prompt="a fox", width=width, height=height, num_frames=frames, fps=fps,
                                num_inference_steps=STEPS, guidance_scale=3.0, seed=SEED)
    sent: list[tuple[int, int, bytes]] = []
    started = time.perf_counter()
    plain = frames_of(loaded, request)
    TIMINGS[f"{model} without preview (s)"] = time.perf_counter() - started
    started = time.perf_counter()
    previewed = frames_of(loaded, request, PreviewTap(1, lambda step, total, data: sent.append((step, total, data))))
    TIMINGS[f"{model} with a preview every step (s)"] = time.perf_counter() - started
    assert np.array_equal(plain, previewed)                          # the same pixels, bit for bit
    assert [(step, total) for step, total, _ in sent] == [(1, STEPS), (2, STEPS), (3, STEPS)]
    strips = [preview.decode(data) for _, _, data in sent]
    assert all(strip.height == preview.PREVIEW_HEIGHT for strip in strips)
    assert len({data for _, _, data in sent}) == len(sent)           # each strip shows that step's latents
    loaded.hooks.start(None, 0)
    assert not loaded.denoiser._forward_pre_hooks or all(         # the tap is gone after the run
        "before_denoiser" not in getattr(hook, "__name__", "") for hook in loaded.denoiser._forward_pre_hooks.values())


def test_a_page_that_asked_gets_previews_through_a_worker(tmp_path, sample_image):
    """The service and a worker process, as the page runs them: the session that set an interval gets updates
    carrying strips (as denoising updates); the board holds none once the video is there."""
    from i2v.service import GenerationService
    from i2v.worker import WorkerPool, WorkerRunner

    runner = WorkerPool([WorkerRunner("tiny", tmp_path / "logs", outputs_dir=tmp_path / "outputs")])
    service = GenerationService(runner, tmp_path / "outputs")
    try:
        service.previews.set_every("page", 2)
        seen, on_board = [], []

        def progress(update):
            seen.append(update)
            if update.preview is not None:
                on_board.append(service.previews.latest("page"))

        values = dict(prompt="a fox", resolution=256, num_frames=4, fps=8, num_inference_steps=STEPS,
                      guidance_scale=3.0, seed=SEED)
        result = service.generate(str(sample_image), values, progress=progress, owner="page")
        strips = [u for u in seen if u.preview is not None]
        assert [(u.phase, u.index, u.total) for u in strips] == [("denoise", 2, STEPS)]
        assert preview.decode(strips[0].preview).height == preview.PREVIEW_HEIGHT
        assert on_board and on_board[0][1] == strips[0].preview
        assert service.previews.latest("page") is None and result.video_path.is_file()
        quiet: list = []    # a caller that never asked: no strips at all
        service.generate(str(sample_image), values, progress=quiet.append, owner="api")
        assert quiet and all(u.preview is None for u in quiet)
    finally:
        runner.shutdown()
