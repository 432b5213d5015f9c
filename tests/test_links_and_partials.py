"""Issue 24, points 7 and 9. outputs/ is a folder others can write to: nothing that is a link, or resolves
outside it, is served, reused or deleted (files.is_own_file); a planted link is removed (the link, never its
target) and the file made afresh. And a worker that dies while saving leaves no `.partial-<pid>-*` file behind:
the supervisor removes its own dead worker's temp files at once. Real files, real links, real processes."""
from __future__ import annotations

import os
import signal
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from i2v import exports, files, history, video
from tests.conftest import app_fixture

SECRET = b"secret: never served, never deleted"


@pytest.fixture()
def outputs(tmp_path):
    return tmp_path / "outputs"


@pytest.fixture()
def mp4(outputs):
    frames = np.zeros((4, 48, 64, 3), dtype=np.uint8)
    for index in range(4):
        frames[index, :, : 16 * (index + 1)] = 255
    path = video.write_video(frames, 8, out_dir=outputs)
    video.write_sidecar_or_discard(path, {"seed": 7})
    return path


@pytest.fixture()
def secret(tmp_path):
    """A file outside outputs/, newer than any video (so an mtime check alone would reuse a link to it)."""
    path = tmp_path / "private" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    future = time.time() + 3600
    os.utime(path, (future, future))
    return path


def plant(link, target):
    link.unlink(missing_ok=True)
    os.symlink(target, link)
    assert link.is_symlink()
    return link


def assert_secret_intact(secret):
    assert not secret.is_symlink() and secret.read_bytes() == SECRET


# --- the one rule ---------------------------------------------------------------------------------------------
def test_is_own_file_accepts_only_regular_files_inside_the_folder(tmp_path, outputs, mp4, secret):
    assert files.is_own_file(mp4, outputs)
    assert not files.is_own_file(plant(outputs / "link.mp4", mp4), outputs)        # a link, even to ours
    assert not files.is_own_file(plant(outputs / "out.txt", secret), outputs)       # a link outside
    assert not files.is_own_file(secret, outputs)                                  # a real file elsewhere
    assert not files.is_own_file(outputs / ".." / "private" / "secret.txt", outputs)
    os.mkfifo(outputs / "pipe.gif")
    assert not files.is_own_file(outputs / "pipe.gif", outputs)                    # not a regular file
    (outputs / "dir.gif").mkdir()
    assert not files.is_own_file(outputs / "dir.gif", outputs)
    sub = plant(outputs / "sub", secret.parent)                                    # a linked folder above
    assert not files.is_own_file(sub / "secret.txt", outputs)
    assert not files.is_own_file(outputs / "missing.mp4", outputs)


# --- exports, thumbnails, the kept input image: a planted link is not followed -------------------------------
@pytest.mark.parametrize("kind", sorted(exports.EXPORTS))
def test_a_linked_export_is_removed_and_made_afresh(mp4, secret, kind):
    target = plant(exports.export_path(mp4, kind), secret)
    made = exports.export(mp4, kind)
    assert made == target and not made.is_symlink() and files.is_own_file(made, mp4.parent)
    assert made.read_bytes() != SECRET
    if kind == "gif":
        with Image.open(made) as image:
            assert image.format == "GIF" and image.n_frames == 4
    else:
        with zipfile.ZipFile(made) as archive:
            assert len(archive.namelist()) == 4
    assert_secret_intact(secret)
    assert not [p for p in mp4.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_link_to_a_file_inside_outputs_is_not_reused_either(mp4, outputs):
    other = outputs / "not-a-gif.bin"
    other.write_bytes(b"ours, but not this video's GIF")
    plant(exports.export_path(mp4, "gif"), other)
    made = exports.export(mp4, "gif")
    assert not made.is_symlink() and made.read_bytes()[:3] == b"GIF"
    assert other.read_bytes() == b"ours, but not this video's GIF"


def test_a_linked_thumbnail_is_not_served_on_the_history_page(mp4, outputs, secret):
    from i2v.ui.handlers import Handlers
    from tests.test_ui import FakeService

    class Listing(FakeService):
        def history(self):
            return history.list_outputs(self.outputs_dir)

    thumb = plant(exports.thumb_path(mp4), secret)
    _, gallery, _ = Handlers(Listing(outputs, None)).history_choices("en")
    (shown, _caption), = gallery["value"]
    assert shown == str(thumb) and not thumb.is_symlink() and files.is_own_file(thumb, outputs)
    with Image.open(shown) as image:
        assert image.format == "JPEG" and image.size == (64, 48)
    assert_secret_intact(secret)


def test_a_linked_input_image_is_not_offered_and_is_replaced_when_kept(mp4, outputs, tmp_path):
    outside = tmp_path / "private.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(outside)
    before = outside.read_bytes()
    plant(exports.input_path(mp4), outside)
    assert "input_image" not in history.list_outputs(outputs)[0]
    kept = exports.save_input(Image.new("RGB", (8, 8), (0, 0, 255)), mp4)
    assert not kept.is_symlink() and outside.read_bytes() == before          # the target was not written
    assert history.list_outputs(outputs)[0]["input_image"] == str(kept)


def test_a_linked_video_or_sidecar_is_never_listed_served_or_exported(mp4, outputs, tmp_path, secret):
    from i2v.ui.handlers import Handlers
    from tests.test_ui import FakeRequest, FakeService

    elsewhere = tmp_path / "elsewhere.mp4"
    elsewhere.write_bytes(mp4.read_bytes())
    linked = plant(outputs / "video_29990101_000000.mp4", elsewhere)       # newest by name and by mtime
    assert [e["video_path"] for e in history.list_outputs(outputs)] == [str(mp4)]
    with pytest.raises(ValueError):
        history.resolve_output(outputs, linked)
    with pytest.raises(ValueError):
        exports.export(linked, "gif")
    with pytest.raises(ValueError):
        exports.thumbnail(linked)
    path, message = Handlers(FakeService(outputs, None)).export_gif(str(linked), FakeRequest())
    assert path is None and "Refused" in message
    assert not exports.export_path(linked, "gif").exists() and not exports.export_path(elsewhere, "gif").exists()

    secret_json = secret.with_name("secret.json")
    secret_json.write_text('{"seed": 424242, "parameters": {"prompt": "private"}}')
    plant(video.sidecar_path(mp4), secret_json)
    entry, = history.list_outputs(outputs)
    assert entry["video_path"] == str(mp4) and "seed" not in entry and "parameters" not in entry


# --- deletion never follows a link ----------------------------------------------------------------------------
def test_deleting_removes_planted_links_but_never_their_targets(mp4, outputs, secret, tmp_path):
    outside_json = tmp_path / "keep.json"
    outside_json.write_text('{"seed": 1}')
    links = [plant(video.sidecar_path(mp4), outside_json),
             *(plant(path, secret) for path in exports.companion_paths(mp4))]
    removed = history.delete_output(outputs, mp4)
    assert mp4 in removed and not mp4.exists()
    assert not any(os.path.lexists(link) for link in links)                  # the links are gone...
    assert_secret_intact(secret)                                             # ...their targets are not
    assert outside_json.read_text() == '{"seed": 1}'


def test_the_page_delete_never_follows_a_link_in_gradios_cache(mp4, outputs, tmp_path, monkeypatch):
    from gradio import processing_utils

    from i2v.ui import handlers as page

    cache = tmp_path / "gradio-cache"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    cached_dir = cache / processing_utils.hash_file(mp4)
    cached_dir.mkdir(parents=True)
    kept = cache / "another-users-upload" / "theirs.mp4"
    kept.parent.mkdir()
    kept.write_bytes(b"someone else's file in the cache")
    link = plant(cached_dir / mp4.name, kept)
    assert page.gradio_cached_copy(mp4) is None                              # a link is not our copy
    page.delete_output(outputs, mp4)
    assert not mp4.exists() and kept.read_bytes() == b"someone else's file in the cache"
    assert link.is_symlink()                                                 # the cache is not ours to tidy

    second = video.write_video(np.zeros((2, 16, 16, 3), np.uint8), 8, out_dir=outputs)
    real_copy = cache / processing_utils.hash_file(second) / second.name
    real_copy.parent.mkdir()
    real_copy.write_bytes(second.read_bytes())
    assert page.gradio_cached_copy(second) == real_copy
    page.delete_output(outputs, second)
    assert not second.exists() and not real_copy.exists() and not real_copy.parent.exists()


# --- the API of a real app -------------------------------------------------------------------------------------
links_app = app_fixture("links")


def test_the_apps_history_offers_no_link(links_app, tmp_path):
    outputs = links_app.outputs
    real = video.write_video(np.zeros((2, 16, 16, 3), np.uint8), 8, out_dir=outputs)
    outside = tmp_path / "private.png"
    Image.new("RGB", (4, 4)).save(outside)
    plant(exports.input_path(real), outside)
    elsewhere = tmp_path / "elsewhere.mp4"
    elsewhere.write_bytes(real.read_bytes())
    plant(outputs / "video_29990101_000000.mp4", elsewhere)
    entries = links_app.client().predict(api_name="/history")
    assert [e["video_path"] for e in entries] == [str(real)]
    assert "input_image" not in entries[0]


# --- point 9: a dead worker's temp files go at once ------------------------------------------------------------
def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_worker_killed_while_saving_leaves_no_partial_file(tmp_path, secret):
    import psutil

    from i2v.core import faults
    from i2v.core.request import build_request
    from i2v.worker import WorkerRunner
    from i2v.core.errors import WorkerLost
    from i2v.worker.watchdog import WatchdogSettings

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    patient = WatchdogSettings(floor_s=600, step_factor=5, load_timeout_s=600, cancel_grace_s=10)
    hang_at_decode = faults.FaultCounter([faults.FaultSpec("hang", "decode", 1)])   # the moment before saving
    worker = WorkerRunner("tiny", tmp_path / "logs", fault_counter=hang_at_decode, watchdog=patient,
                          outputs_dir=outputs)
    image = Image.new("RGB", (96, 64), (10, 20, 30))
    request = build_request(image.size, prompt="x", resolution=256, num_frames=2, num_inference_steps=1)
    decoding = threading.Event()
    outcome: dict = {}

    def job():
        try:
            worker.run(image, request, 1, on_event=lambda phase, *_: phase == "decode" and decoding.set(),
                       out_dir=outputs)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=job, daemon=True)
    try:
        thread.start()
        wait_until(decoding.is_set, 300, "the worker to reach decode")
        dead = worker.pid
        prefix = f"{video.PARTIAL_PREFIX}{dead}-"
        partials = [outputs / f"{prefix}k2j4.mp4", outputs / f"{prefix}x9q1.tmp"]   # what the saver names them
        for partial in partials:
            partial.write_bytes(b"\0" * 4096)
        planted = plant(outputs / f"{prefix}link.mp4", secret)
        live = outputs / f"{video.PARTIAL_PREFIX}{os.getpid()}-live.mp4"          # a live writer's
        longer = outputs / f"{video.PARTIAL_PREFIX}{dead}7-other.mp4"             # another PID's, same digits
        elsewhere = tmp_path / f"{prefix}not-in-outputs.mp4"
        for keep in (live, longer, elsewhere):
            keep.write_bytes(b"keep")

        os.kill(dead, signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), WorkerLost), outcome
        assert "generator died" in str(outcome["error"])
        # right after the death is reported, before any next job: that worker's partials are gone
        assert not any(os.path.lexists(p) for p in [*partials, planted])
        assert_secret_intact(secret)
        assert live.exists() and longer.exists() and elsewhere.exists()
        assert not list(outputs.glob("video_*"))

        # a worker that dies while idle: noticed (and tidied) before the next request starts a new one
        idle = worker.pid
        assert idle and idle != dead
        leftover = outputs / f"{video.PARTIAL_PREFIX}{idle}-idle.mp4"
        leftover.write_bytes(b"x")
        os.kill(idle, signal.SIGKILL)
        wait_until(lambda: not psutil.pid_exists(idle) or psutil.Process(idle).status() == psutil.STATUS_ZOMBIE,
                   30, "the idle worker to die")
        worker.query_one("memory")
        assert not leftover.exists() and worker.pid not in (None, idle)
        assert live.exists() and longer.exists()
    finally:
        worker.shutdown()
        thread.join(30)
