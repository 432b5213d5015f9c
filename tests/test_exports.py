"""GIF and PNG-frames exports of a finished video: every frame, the video's size and pace, whole files beside
the MP4, deleted with it, and nothing made for a path outside outputs/."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from i2v import exports, history, video


@pytest.fixture()
def mp4(tmp_path):
    frames = np.zeros((5, 48, 64, 3), dtype=np.uint8)
    for index in range(5):
        frames[index, :, : 12 * (index + 1)] = 255          # a bar that grows: each frame differs
    path = video.write_video(frames, 10, out_dir=tmp_path / "outputs")
    video.write_sidecar_or_discard(path, {"seed": 1})
    return path


def test_gif_has_every_frame_at_the_videos_pace(mp4):
    gif = exports.export(mp4, "gif")
    assert gif == mp4.with_name(mp4.stem + ".gif")
    with Image.open(gif) as image:
        assert image.n_frames == 5 and image.size == (64, 48)
        assert image.info["duration"] == 100 and image.info["loop"] == 0       # 10 fps, looping
    assert exports.export(mp4, "gif").stat().st_mtime == gif.stat().st_mtime    # made once
    assert not [p for p in mp4.parent.iterdir() if p.name.endswith(".tmp")]     # no temp file left


def test_frames_zip_holds_one_png_per_frame(mp4):
    archive = exports.export(mp4, "frames")
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        assert names == [f"frame_{i:04d}.png" for i in range(1, 6)]
        first = Image.open(opened.open(names[0]))
        last = Image.open(opened.open(names[-1]))
        assert first.size == (64, 48)
        assert np.asarray(last.convert("L"))[:, 50].mean() > 200 > np.asarray(first.convert("L"))[:, 50].mean()


def test_exports_go_with_the_video_and_are_not_history_entries(mp4):
    assert "input_image" not in history.list_outputs(mp4.parent)[0]
    video.write_sidecar_or_discard(mp4, {"seed": 1, "input_image": "/etc/passwd"})      # a sidecar cannot name it
    assert "input_image" not in history.list_outputs(mp4.parent)[0]
    made = [exports.export(mp4, kind) for kind in exports.EXPORTS]
    made.append(exports.save_input(Image.new("RGB", (8, 8)), mp4))
    assert [e["video_path"] for e in history.list_outputs(mp4.parent)] == [str(mp4)]
    assert history.list_outputs(mp4.parent)[0]["input_image"] == str(made[-1])
    removed = history.delete_output(mp4.parent, mp4)
    assert set(made) <= set(removed) and not any(p.exists() for p in made)


def test_the_page_exports_only_outputs(mp4, tmp_path):
    from tests.test_ui import FakeRequest, FakeService, handlers

    fns = handlers(FakeService(mp4.parent, None))
    path, message = fns["export_gif"](str(mp4), FakeRequest())
    assert path.endswith(".gif") and "ready" in message
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(mp4.read_bytes())
    assert fns["export_frames"](str(outside), FakeRequest())[0] is None
    assert not outside.with_name("secret.frames.zip").exists()
    assert "请" in fns["export_gif"](None, FakeRequest("zh-CN"))[1]


def test_history_gallery_shows_each_videos_first_frame_and_a_click_chooses_it(mp4, tmp_path):
    from tests.test_ui import FakeRequest, FakeService, handlers

    class Listing(FakeService):
        def history(self):
            return history.list_outputs(self.outputs_dir)

    from i2v.ui.handlers import Handlers

    fns = handlers(Listing(mp4.parent, None))
    pick, gallery, _ = Handlers(Listing(mp4.parent, None)).history_choices("en")
    (thumb, caption), = gallery["value"]
    assert pick["value"] == str(mp4) and thumb == str(exports.thumb_path(mp4))
    with Image.open(thumb) as image:
        assert image.size == (64, 48)                                 # small videos keep their size
        assert np.asarray(image.convert("L"))[:, :8].mean() > 200 > np.asarray(image.convert("L"))[:, 20:].mean()

    class Select:
        index, value = 0, {"caption": caption}
    assert fns["on_gallery_select"](Select()) == str(mp4)
    assert exports.thumb_path(mp4) in history.delete_output(mp4.parent, mp4)


def test_several_ticked_videos_are_deleted_after_one_confirmation(tmp_path):
    from i2v.ui.handlers import Handlers
    from tests.test_ui import FakeRequest, FakeService

    outputs = tmp_path / "outputs"
    frames = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    made = [video.write_video(frames, 8, out_dir=outputs) for _ in range(3)]

    class Listing(FakeService):
        def history(self):
            return history.list_outputs(self.outputs_dir)

    handler = Handlers(Listing(outputs, None))
    secret = tmp_path / "keep.mp4"
    secret.write_bytes(b"not yours")
    row, question = handler.ask_delete(str(made[0]), [str(made[1]), str(made[2])], FakeRequest())
    assert row["visible"] is True and "**2**" in question
    row, message, pick, gallery, ticked = handler.confirm_delete(str(made[0]), [str(made[1]), str(secret)],
                                                                 FakeRequest())
    assert made[0].exists() and not made[1].exists() and secret.exists()     # the ticked ones, inside outputs
    assert "Deleted" in message and "Refused" in message
    assert {value for _, value in ticked["choices"]} == {str(made[0]), str(made[2])}
    assert ticked["value"] == []
