"""Live preview: the projection's shape and value range, the strip and its JPEG, each family's factors against
its VAE's latent channels, and the interval rule of the tap."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from i2v import preview
from i2v.models import FAMILIES
from i2v.preview_tap import due

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


def test_projection_shape_and_range():
    factors = ((0.5, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, 0.0, 0.5), (0.1, 0.1, 0.1))
    latents = torch.randn(5, 4, 6, 7, generator=torch.Generator().manual_seed(0)) * 10   # far outside [-1, 1]
    rgb = preview.project(latents, factors, bias=(0.1, -0.1, 0.0))
    assert rgb.shape == (5, 6, 7, 3) and rgb.dtype == np.uint8
    assert rgb.min() == 0 and rgb.max() == 255        # clamped, not wrapped around


def test_projection_values():
    """RGB = latents . factors + bias, [-1, 1] -> [0, 255]: channel 0 drives red only."""
    factors = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    latents = torch.zeros(1, 4, 2, 2)
    latents[0, 0] = 0.5
    rgb = preview.project(latents, factors, bias=(0.0, -1.0, 0.0))
    assert rgb[0, 0, 0].tolist() == [191, 0, 128]     # (0.5+1)*127.5, (-1+1)*127.5, (0+1)*127.5 rounded


def test_projection_refuses_the_wrong_channel_count():
    with pytest.raises(ValueError, match="4 preview factors for 16 latent channels"):
        preview.project(torch.zeros(1, 16, 2, 2), ((0.0, 0.0, 0.0),) * 4)


@pytest.mark.parametrize("count, expected", [(1, [0]), (3, [0, 1, 2]), (4, [0, 1, 2, 3]), (9, [0, 3, 5, 8]),
                                             (31, [0, 10, 20, 30])])
def test_pick_frames_spreads_first_to_last(count, expected):
    assert preview.pick_frames(count) == expected


def test_render_is_a_small_jpeg_strip():
    factors = tuple((0.1, 0.2, 0.3) for _ in range(48))
    data = preview.render(torch.randn(31, 48, 44, 44), factors, (0.0, 0.0, 0.0))   # Wan 704 px, 121 frames
    image = preview.decode(data)
    assert data[:2] == b"\xff\xd8"                                     # JPEG
    assert image.size == (4 * preview.PREVIEW_HEIGHT, preview.PREVIEW_HEIGHT)
    assert len(data) < 64 * 1024                                       # small enough for the pipe every few steps


def test_a_wide_latent_grid_is_at_most_twice_as_wide():
    image = preview.decode(preview.render(torch.randn(2, 4, 8, 40), tuple((0.1,) * 3 for _ in range(4))))
    assert image.size == (2 * 2 * preview.PREVIEW_HEIGHT, preview.PREVIEW_HEIGHT)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_family_has_factors_for_its_latent_channels(family):
    """One row per latent channel of the family's VAE (its full-size config), three colours each, and a source."""
    vae = family.full_size_configs()["vae"]
    channels = vae.get("latent_channels") or vae.get("z_dim")
    factors, bias = family.preview_rgb()
    assert len(factors) == channels and all(len(row) == 3 for row in factors)
    assert bias is None or len(bias) == 3
    table = family.configs_dir() / "preview_factors.json"
    if table.is_file():
        assert "ComfyUI" in json.loads(table.read_text(encoding="utf-8"))["source"]


def test_due_after_every_n_finished_steps():
    assert [step for step in range(1, 12) if due(step, 4)] == [5, 9]      # after 4 and 8 steps
    assert [step for step in range(1, 5) if due(step, 1)] == [2, 3, 4]
    assert not any(due(step, 0) for step in range(1, 10))


def test_render_leaves_torch_threads_as_they_were():
    before = torch.get_num_threads()
    preview.render(torch.randn(3, 4, 8, 8), tuple((0.1,) * 3 for _ in range(4)))
    assert torch.get_num_threads() == before


def test_only_runners_that_take_previews_are_asked_for_them():
    from i2v.preview_board import takes_previews
    from i2v.runner import LocalRunner
    from i2v.worker import WorkerPool, WorkerRunner

    class OlderRunner:        # the Ray backend's run() has no preview_every: its jobs run without previews
        def run(self, image, request, seed, on_event=None, out_dir=None, out_path=None, policy=None, job=None,
                sidecar=None):
            pass

    assert takes_previews(LocalRunner("tiny")) and takes_previews(WorkerRunner.__new__(WorkerRunner))
    assert takes_previews(WorkerPool.__new__(WorkerPool)) and not takes_previews(OlderRunner())


def test_the_board_keeps_each_sessions_interval_and_newest_strip():
    from i2v.preview_board import PreviewBoard
    from i2v.progress import update_for

    board, seen = PreviewBoard(), []
    assert board.set_every("a", 3) == 3 and board.every("a") == 3
    assert board.every("b") == 0 and board.every(None) == 0          # never asked: no previews computed
    tap = board.tap("a", seen.append)
    tap(update_for("preview", 3, 12, b"one"))
    tap(update_for("preview", 6, 12, b"two"))
    tap(update_for("denoise", 7, 12))
    assert [(u.phase, u.index, u.preview) for u in seen] == [("denoise", 3, b"one"), ("denoise", 6, b"two"),
                                                             ("denoise", 7, None)]
    first = board.latest("a")
    assert first[1] == b"two" and board.latest("b") is None
    board.clear("a")
    assert board.latest("a") is None and board.every("a") == 3
    board.forget("a")
    assert board.every("a") == 0
