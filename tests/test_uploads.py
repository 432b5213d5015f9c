"""Uploaded images do not pile up in Gradio's temp folder: an API job's upload is removed when the job ends, a
page's uploads when the page goes away; nothing outside the upload folder is ever removed."""
from pathlib import Path

import httpx
import pytest
from gradio_client import handle_file

from i2v.ui.uploads import SessionUploads, remove_upload
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


def test_a_pages_uploads_go_when_the_page_goes_and_nothing_else(tmp_path, sample_image):
    folder = tmp_path / "gradio"
    (folder / "abc").mkdir(parents=True)
    mine = folder / "abc" / "in.png"
    mine.write_bytes(sample_image.read_bytes())
    theirs = folder / "other.png"
    theirs.write_bytes(b"x")
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    link = folder / "link.png"
    link.symlink_to(outside)
    uploads = SessionUploads()
    for path in (mine, outside, link, "data:image/png;base64,AAAA"):
        uploads.add("tab-1", str(path))
    uploads.add("tab-2", str(theirs))
    assert uploads.remove_all("tab-1", folder) == 1
    assert not mine.exists() and not (folder / "abc").exists()       # its own folder went with it
    assert outside.read_bytes() == b"secret" and link.is_symlink() and theirs.exists()
    assert uploads.remove_all("tab-1", folder) == 0 and uploads.remove_all(None, folder) == 0
    assert remove_upload(str(theirs), folder) and not theirs.exists()
