import numpy as np
import pytest

from i2v import files, video


def frames(count=6, height=64, width=96):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (count, height, width, 3), dtype=np.uint8)


def test_mp4_is_h264_yuv420p_with_the_requested_shape(tmp_path):
    path = video.write_video(frames(7, 64, 96), fps=12, out_dir=tmp_path)
    info = video.probe_video(path)
    assert (info.frames, info.width, info.height, info.fps) == (7, 96, 64, 12)
    assert info.codec.startswith("h264") and info.pix_fmt.startswith("yuv420p")
    assert path.name.startswith("video_") and path.suffix == ".mp4"


def test_same_second_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setattr(video, "timestamp_stem", lambda now=None: "video_20260101_000000")
    paths = [video.write_video(frames(2), fps=8, out_dir=tmp_path) for _ in range(3)]
    assert [p.name for p in paths] == ["video_20260101_000000.mp4", "video_20260101_000000_1.mp4",
                                       "video_20260101_000000_2.mp4"]
    assert [video.probe_video(p).frames for p in paths] == [2, 2, 2]     # three whole videos, none overwritten


def test_explicit_out_path_is_never_overwritten(tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        video.write_video(frames(2), fps=8, out_path=target)
    assert target.read_bytes() == b"keep me"
    assert not list(tmp_path.glob(f"{video.PARTIAL_PREFIX}*"))


def test_a_failed_encode_leaves_no_file(tmp_path):
    with pytest.raises(Exception):
        video.write_video(np.zeros((2, 64, 64), np.uint8), fps=8, out_dir=tmp_path)   # no colour axis
    assert list(tmp_path.iterdir()) == []


def test_sidecar_is_written_atomically_and_partials_are_cleaned(tmp_path):
    path = files.write_json_atomic(tmp_path / "a.json", {"seed": 1, "名字": "猫"})
    assert path.read_text(encoding="utf-8").count("猫") == 1
    assert oct(path.stat().st_mode & 0o777) == oct(files.readable_mode()) and len(list(tmp_path.iterdir())) == 1
    (tmp_path / f"{video.PARTIAL_PREFIX}x.mp4").write_bytes(b"")
    assert [p.name for p in video.remove_partials(tmp_path)] == [f"{video.PARTIAL_PREFIX}x.mp4"]
