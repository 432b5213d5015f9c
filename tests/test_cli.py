"""`python main.py generate` as a user runs it: real process, tiny model."""
import json
import os
import subprocess
import sys

from i2v import video
from tests.conftest import ROOT

ARGS = ["--model", "tiny", "--prompt", "a dog running", "--resolution", "256", "--frames", "3", "--steps", "1",
        "--fps", "6"]


def run_cli(args, tmp_path, **kwargs):
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"))
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "generate", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_two_runs_at_once_write_two_valid_videos_with_sidecars(tmp_path, sample_image):
    procs = [run_cli(["--image", str(sample_image), *ARGS, "--json"], tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    paths = {r["video_path"] for r in results}
    assert len(paths) == 2
    for result in results:
        info = video.probe_video(result["video_path"])
        assert (info.frames, info.width, info.height, info.fps) == (3, 344, 256, 6)
        sidecar = json.loads(open(result["sidecar_path"]).read())
        assert sidecar["seed"] == result["seed"] and sidecar["parameters"]["num_inference_steps"] == 1
    assert len(list((tmp_path / "outputs").glob("*.mp4"))) == 2


def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    proc = run_cli(["--image", str(bad), *ARGS], tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "Input image: not an image" in err and "Traceback" not in err
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").iterdir())


def test_out_path_is_used_and_not_overwritten(tmp_path, sample_image):
    target = tmp_path / "mine.mp4"
    first = run_cli(["--image", str(sample_image), *ARGS, "--out", str(target)], tmp_path)
    assert first.wait(300) == 0 and video.probe_video(target).frames == 3
    second = run_cli(["--image", str(sample_image), *ARGS, "--out", str(target)], tmp_path)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2 and "already exists" in err
