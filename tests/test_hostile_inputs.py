"""The hostile-input matrix (tests/hostile_inputs.py, 28 cases) through the real API and the CLI: each is
answered with a message naming the field, or with a valid video whose conversions are reported; afterwards
the app still generates."""
import json
import os
import subprocess
import sys

import httpx
import pytest
from gradio_client import handle_file

from i2v import video
from i2v.core.settings import SETTINGS, default
from tests.conftest import ROOT
from tests.hostile_inputs import CASES, GOOD_VALUES, write_images


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("hostile"))


INPUT_ORDER = tuple(s.name for s in SETTINGS)    # the API's inputs after the image: the settings table's rows


def raw_call(app, image, values) -> str:
    """The Gradio REST API by hand, for what gradio_client refuses to send (NaN, Infinity are valid JavaScript
    numbers a browser or script can post): returns the error message the server answers with."""
    base = app.url + "gradio_api"
    with open(image, "rb") as handle:
        uploaded = httpx.post(f"{base}/upload", files={"files": (image.name, handle)}, timeout=60).json()[0]
    file_data = {"path": uploaded, "meta": {"_type": "gradio.FileData"}, "orig_name": image.name}
    body = json.dumps({"data": [file_data, *[values.get(name, default(name)) for name in INPUT_ORDER]]},
                      allow_nan=True)
    event = httpx.post(f"{base}/call/generate", content=body, headers={"Content-Type": "application/json"},
                       timeout=60).json()["event_id"]
    stream = httpx.get(f"{base}/call/generate/{event}", timeout=120).text
    assert "event: error" in stream, stream[-500:]
    return stream


def api_call(app, images, case):
    values = {**GOOD_VALUES, **case.values}
    if any(isinstance(v, (dict, list)) or isinstance(v, float) and (v != v or v in (float("inf"), float("-inf")))
           or isinstance(v, str) and not v.encode("utf-8", "surrogatepass").decode("utf-8", "ignore") == v
           for v in values.values()):      # what gradio_client cannot send goes by hand
        raise RuntimeError(raw_call(app, images[case.image], values))
    return app.client().predict(image=handle_file(str(images[case.image])), api_name="/generate", **values)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_api_answers_every_hostile_input(running_app, images, case):
    if case.error_label:
        with pytest.raises(Exception) as info:
            api_call(running_app, images, case)
        message = str(info.value)
        assert case.error_label in message, message
        for leak in ("Traceback", "Error:", "Exception", "i2v.", "File \""):
            assert leak not in message, message
        return
    path, info = api_call(running_app, images, case)
    probed = video.probe_video(path)
    assert probed.frames == 3 and probed.width % 8 == 0 and probed.height % 8 == 0
    if case.note:
        assert any(case.note in note for note in info["input_notes"]), info["input_notes"]


def test_the_app_still_generates_after_the_matrix(running_app, images):
    path, info = running_app.client().predict(image=handle_file(str(images["good"])), api_name="/generate",
                                              **GOOD_VALUES)
    assert video.probe_video(path).frames == 3 and httpx.get(running_app.url).status_code == 200


CLI_CASES = [c for c in CASES if c.image != "good" and c.error_label] + [
    c for c in CASES if c.name in ("frames NaN", "guidance Infinity", "empty prompt", "huge prompt", "cmyk jpeg")]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_cli_answers_hostile_inputs(tmp_path, images, case):
    values = {**GOOD_VALUES, **case.values}
    args = [sys.executable, str(ROOT / "main.py"), "generate", "--model", "tiny", "--image", str(images[case.image]),
            "--json"]
    for name, value in values.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"))
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr
    if case.error_label:
        error = json.loads(done.stdout)["error"]            # --json: the error as JSON, exit code 2
        assert done.returncode == 2 and case.error_label in error["message"], done.stdout[-800:]
        assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").iterdir())
    else:
        assert done.returncode == 0, done.stderr[-800:]
        result = json.loads(done.stdout)
        assert video.probe_video(result["video_path"]).frames == 3
