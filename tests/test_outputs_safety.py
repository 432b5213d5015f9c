"""Outputs are whole or absent (disk full on a real small tmpfs), and History survives any sidecar."""
import json
import os
import shutil
import subprocess
import uuid

import pytest

from i2v import files, history, video
from i2v.core.request import RequestError

FRAMES_SHAPE = (6, 256, 344, 3)


def frames():
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, 256, FRAMES_SHAPE, dtype=np.uint8)    # noise: compresses badly, needs real space


@pytest.fixture()
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only, as CI runs): far too small for the video."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_gives_a_clear_message_and_leaves_nothing(small_disk):
    outputs = small_disk / "outputs"
    with pytest.raises(RequestError) as info:
        video.write_video(frames(), 8, out_dir=outputs)
    assert info.value.key == "disk_full"
    assert "not enough disk space in outputs/" in str(info.value).lower() and "MiB free" in str(info.value)
    assert list(outputs.iterdir()) == []                      # no MP4, no temp file
    assert "磁盘空间不足" in info.value.text("zh")


def test_failed_sidecar_removes_its_video(tmp_path, monkeypatch):
    path = video.write_video(frames()[:2], 8, out_dir=tmp_path)

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "write_json_atomic", full)
    with pytest.raises(RequestError, match="disk space"):
        video.write_sidecar_or_discard(path, {"seed": 1})
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_cut_short_file_is_not_accepted(tmp_path, monkeypatch):
    """The writer's result is checked: a file that does not decode to every frame is an error, not an output."""
    real = video._encode_mp4

    def short(frames_, fps, path):
        real(frames_[:1], fps, path)

    monkeypatch.setattr(video, "_encode_mp4", short)
    with pytest.raises(RequestError):
        video.write_video(frames()[:3], 8, out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


SIDECARS = [
    b"", b"not json", b"[1, 2, 3]", b"\"a string\"", b"42", b"null", b"{\"parameters\": \"oops\"}",
    b"{\"video_path\": \"/etc/passwd\", \"seed\": 3}", b"{\"seed\": \"abc\", \"timings_s\": [1]}",
    b"{\"parameters\": {\"prompt\": 12, \"num_frames\": \"lots\"}, \"created\": 5}",
    json.dumps({"parameters": {"prompt": "<script>alert(1)</script>`x`"}}).encode(),
    b"[" * 100000, "\ud800".encode("utf-8", "surrogatepass"), b"{\"a\": " + b"1" * 2_000_000 + b"}",
]


def test_history_tolerates_any_sidecar_and_never_takes_a_path_from_it(tmp_path):
    from i2v.ui import history_label, history_markdown

    outputs = tmp_path / "outputs"
    made = []
    for index, content in enumerate(SIDECARS):
        path = video.write_video(frames()[:2], 8, out_path=outputs / f"video_2026010{index % 10}_00000{index}.mp4")
        video.sidecar_path(path).write_bytes(content)
        made.append(path)
    entries = history.list_outputs(outputs)
    assert sorted(e["video_path"] for e in entries) == sorted(str(p) for p in made)
    for entry in entries:
        assert isinstance(entry, dict) and entry["video_path"].startswith(str(outputs))
        history_label(entry)
        for lang in ("en", "zh"):
            shown = history_markdown(entry, lang)
            assert "<script>" not in shown


def test_only_outputs_are_deleted(tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    outside = tmp_path / "precious.mp4"
    outside.write_bytes(b"x")
    (outputs / "link.mp4").symlink_to(outside)
    for bad in (outside, outputs / ".." / "precious.mp4", outputs / "link.mp4", "/etc/passwd", outputs / "x.json"):
        with pytest.raises(ValueError):
            history.delete_output(outputs, bad)
    assert outside.exists()


def test_one_call_writes_the_video_and_its_sidecar_or_neither(tmp_path, monkeypatch):
    """video.write_video(..., sidecar=...) is the one call every runner (worker, Ray actor, in-process) uses."""
    path = video.write_video(frames()[:2], 8, out_dir=tmp_path, sidecar=lambda p: {"video": p.name, "seed": 3})
    assert json.loads(video.sidecar_path(path).read_text()) == {"video": path.name, "seed": 3}

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "write_json_atomic", full)
    with pytest.raises(RequestError, match="disk space"):
        video.write_video(frames()[:2], 8, out_dir=tmp_path / "b", sidecar=lambda p: {"video": p.name})
    assert list((tmp_path / "b").iterdir()) == []


def test_the_worker_writes_the_sidecar_the_service_returns(tmp_path):
    from PIL import Image

    from i2v import sidecar
    from i2v.core.request import build_request
    from i2v.worker import WorkerRunner

    worker = WorkerRunner("tiny", tmp_path / "logs")
    try:
        image = Image.new("RGB", (96, 64), (10, 20, 30))
        request = build_request(image.size, prompt="x", resolution=256, num_frames=2, num_inference_steps=1)
        known = sidecar.base(5, [{"field": "x", "asked": 1, "got": 2, "reason": "r"}], ["converted"])
        output = worker.run(image, request, 5, out_dir=tmp_path / "out", sidecar=known)
    finally:
        worker.shutdown()
    written = json.loads(video.sidecar_path(output.video_path).read_text())
    assert written == output.info and written["video"] == output.video_path.name and written["seed"] == 5
    assert written["adjustments"][0]["field"] == "x" and written["input_notes"] == ["converted"]
    assert written["timings_s"]["total"] >= written["timings_s"]["denoise"] > 0
