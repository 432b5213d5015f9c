"""Uploaded images do not pile up in Gradio's temp folder: an upload is removed when its last holder (a page
showing it, an API job, a waiting job) lets go; nothing else is ever removed."""
from pathlib import Path

import httpx
import pytest
from gradio_client import handle_file

from i2v.ui.uploads import Uploads
from tests.conftest import RunningApp


@pytest.fixture(scope="module")
def app_with_temp(tmp_path_factory):
    temp = tmp_path_factory.mktemp("gradio_temp")
    app = RunningApp(tmp_path_factory.mktemp("uploads"), extra_env={"GRADIO_TEMP_DIR": str(temp)})
    yield app, temp
    app.stop()


def uploaded_images(temp: Path) -> list[Path]:
    return [p for p in temp.rglob("*.png") if p.is_file()]


def test_an_api_jobs_upload_is_removed_when_the_job_ends(app_with_temp, sample_image):
    app, temp = app_with_temp
    client = app.client()
    path, info = client.predict(image=handle_file(str(sample_image)), prompt="a boat", negative_prompt="",
                                resolution=256, num_frames=2, fps=8, num_inference_steps=1, guidance_scale=7.5,
                                seed=1, api_name="/generate")
    assert Path(path).is_file() and info["seed"] == 1
    assert not uploaded_images(temp), uploaded_images(temp)
    # a refused job's upload goes too
    with pytest.raises(Exception, match="Frames"):
        client.predict(image=handle_file(str(sample_image)), prompt="a boat", num_frames=-1,
                       api_name="/generate")
    assert not uploaded_images(temp), uploaded_images(temp)


def test_an_upload_without_a_job_is_kept_for_its_job(app_with_temp, sample_image):
    app, temp = app_with_temp
    with open(sample_image, "rb") as handle:
        stored = httpx.post(f"{app.url}gradio_api/upload", files={"files": ("in.png", handle)}, timeout=60).json()[0]
    assert Path(stored).is_file() and Path(stored).resolve().is_relative_to(temp.resolve())


def test_uploads_are_removed_when_their_last_holder_lets_go(tmp_path, sample_image):
    folder = tmp_path / "gradio"
    (folder / "abc").mkdir(parents=True)
    shared = folder / "abc" / "in.png"            # identical uploads share one file
    shared.write_bytes(sample_image.read_bytes())
    other = folder / "other.png"
    other.write_bytes(b"x")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    link = folder / "link.png"
    link.symlink_to(outside)
    waiting: set[str] = set()
    uploads = Uploads(waiting_paths=lambda: waiting, folder=lambda: folder)
    uploads.hold("tab-1", str(shared))
    uploads.hold("api-1", str(shared))
    uploads.hold("tab-2", str(other))
    for path in (outside, link, "data:image/png;base64,AAAA"):
        uploads.hold("tab-3", str(path))
    assert uploads.release("api-1") == 0 and shared.exists()       # tab-1 still shows it
    waiting.add(str(shared))
    assert uploads.release("tab-1") == 0 and shared.exists()       # a waiting job will read it
    uploads.hold("tab-1", str(shared))
    waiting.clear()
    uploads.hold("tab-1", str(other), only=True)                   # tab-1 changed its image
    assert not shared.exists() and not (folder / "abc").exists()  # its own folder went with it
    assert uploads.release("tab-2") == 0 and other.exists()        # tab-1 holds it now
    assert uploads.release("tab-1") == 1 and not other.exists()
    assert uploads.release("tab-3") == 0                           # never a link, its target or a file outside
    assert outside.read_bytes() == b"secret" and link.is_symlink()
    assert uploads.release(None) == 0
