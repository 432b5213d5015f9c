"""The History tab's outputs folder line (videos and size on disk, both languages) and its open button: only a
caller on this computer's loopback may open the folder (a remote client would open a window on the server)."""
from __future__ import annotations

from types import SimpleNamespace

from i2v.core.words import render
from i2v.ui import outputs_folder


def request(host: str, lang: str = "en-US"):
    return SimpleNamespace(client=SimpleNamespace(host=host), headers={"accept-language": lang})


def test_the_line_counts_our_videos_and_the_folders_size(tmp_path):
    from i2v import history

    (tmp_path / "video_20260101_000000_1.mp4").write_bytes(b"\0" * 1500)
    (tmp_path / "notes.txt").write_bytes(b"\0" * 500)             # not a video of ours, still on disk
    videos = len(history.list_outputs(tmp_path, limit=1000))
    count, size = outputs_folder.folder_figures(tmp_path)
    assert count == videos and size == 2000
    assert outputs_folder.summary(tmp_path, "zh") == render("outputs_folder_line", "zh", path=str(tmp_path),
                                                            count=videos, size="2.0 kB")
    assert outputs_folder.folder_figures(tmp_path / "missing") == (0, 0)


def test_open_folder_runs_the_desktop_opener_for_this_computer_only(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(outputs_folder, "opener", lambda: ["/usr/bin/xdg-open"])
    said = outputs_folder.open_folder(tmp_path, request("192.168.1.20"), run=lambda *a, **k: ran.append(a))
    assert ran == [] and said == render("open_folder_remote", "en")
    said = outputs_folder.open_folder(tmp_path, request("127.0.0.1", "zh-CN"), run=lambda *a, **k: ran.append(a))
    assert ran == [(["/usr/bin/xdg-open", str(tmp_path.resolve())],)]
    assert said == render("open_folder_done", "zh", path=str(tmp_path))
    monkeypatch.setattr(outputs_folder, "opener", lambda: None)    # a server without a desktop
    assert outputs_folder.open_folder(tmp_path, request("::1"), run=lambda *a, **k: ran.append(a)) == \
        render("open_folder_none", "en", path=str(tmp_path)) and len(ran) == 1
