"""The service on the real tiny pipeline, in process: files, sidecar, seeds, cancel, bad input."""
import json
import threading

import pytest

from i2v import video
from i2v.core.errors import GenerationCancelled, RequestError
from i2v.service import load_image

SMALL = dict(prompt="a boat on a lake", resolution=256, num_frames=4, fps=8, num_inference_steps=2, guidance_scale=7.0)


def count_unet_calls(runner):
    calls = {"n": 0}
    handle = runner.load().pipe.unet.register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    return calls, handle


def test_generate_writes_video_and_sidecar(tiny_service, sample_image):
    result = tiny_service.generate(load_image(sample_image), {**SMALL, "seed": -1})
    info = video.probe_video(result.video_path)
    assert (info.frames, info.width, info.height, info.fps) == (4, 344, 256, 8)
    sidecar = json.loads(result.sidecar_path.read_text())
    assert sidecar["seed"] == result.seed and 0 <= result.seed <= 2**32 - 1
    assert sidecar["parameters"]["width"] == 344 and sidecar["model"] == "tiny"
    assert sidecar["load_report"]["outcomes"] and "denoise" in sidecar["timings_s"]
    assert "noise" in sidecar["warning"]
    assert json.dumps(sidecar).count("random noise") == 1          # the tiny-model banner once, not twice
    kept = result.video_path.with_name(result.video_path.stem + ".input.png")   # for History's Reuse
    from PIL import Image
    with Image.open(kept) as image, Image.open(sample_image) as original:
        assert image.size == original.size and image.mode == "RGB"
    assert tiny_service.history()[0]["input_image"] == str(kept)


def test_same_seed_same_video_frames(tiny_runner, sample_image):
    image = load_image(sample_image)
    from i2v.core.request import build_request

    from i2v import pipeline as pl

    request = build_request(image.size, **{**SMALL, "seed": 7})
    loaded = tiny_runner.load()

    def frames(seed):
        return pl.decode_frames(loaded, pl.sample_latents(loaded, image, request, seed, None), request, None)

    first, second, other = frames(7), frames(7), frames(8)
    assert (first == second).all() and not (first == other).all()


def test_tiny_model_time_estimate_is_its_measured_speed_after_a_run(tiny_service, sample_image):
    values = {k: v for k, v in SMALL.items() if k not in ("prompt", "seed")}
    result = tiny_service.generate(load_image(sample_image), {**SMALL, "num_inference_steps": 3})
    estimate = tiny_service.estimate({**values, "num_inference_steps": 30}, (344, 256))
    per_step = result.timings["denoise"] / 3
    assert estimate["speed"] == "measured"
    assert estimate["seconds_estimate"] == pytest.approx(30 * per_step, rel=0.01, abs=0.1)


def test_progress_reports_every_step_and_chunk(tiny_service, sample_image):
    seen = []
    tiny_service.generate(load_image(sample_image), {**SMALL, "num_inference_steps": 3}, progress=seen.append)
    denoise = [u.index for u in seen if u.phase == "denoise"]
    assert denoise == [1, 2, 3]
    assert "load" not in [u.phase for u in seen[1:]]
    tiny_service.unload()              # not loaded: the run says "Loading model" before anything else
    seen.clear()
    tiny_service.generate(load_image(sample_image), {**SMALL, "num_inference_steps": 1}, progress=seen.append)
    assert seen[0].phase == "load" and [u.phase for u in seen].count("load") == 1 and seen[0].fraction == 0.0
    assert [u.index for u in seen if u.phase == "decode"] == [1, 2, 3, 4]
    fractions = [u.fraction for u in seen]
    assert fractions == sorted(fractions) and fractions[-1] <= 1.0


def test_cancel_stops_within_one_step_and_leaves_nothing(tiny_service, tiny_runner, sample_image):
    calls, handle = count_unet_calls(tiny_runner)
    state = {}
    tiny_service.outputs_dir.mkdir(parents=True)     # there, empty: a cancelled job must leave it so

    def cancel_at_step_two(update):
        if update.phase == "denoise" and update.index == 2 and "at" not in state:
            state["at"] = calls["n"]
            assert tiny_service.cancel_all()

    try:
        with pytest.raises(GenerationCancelled):
            tiny_service.generate(load_image(sample_image), {**SMALL, "num_inference_steps": 20},
                                  progress=cancel_at_step_two)
    finally:
        handle.remove()
    assert calls["n"] - state["at"] <= 1          # at most the step already started
    assert list(tiny_service.outputs_dir.iterdir()) == []
    result = tiny_service.generate(load_image(sample_image), SMALL)   # the next job works
    assert result.video_path.is_file()


def test_one_job_at_a_time(tiny_service, sample_image):
    from i2v.core.errors import BusyError

    started, release = threading.Event(), threading.Event()

    def hold(update):
        started.set()
        release.wait(10)

    worker = threading.Thread(target=lambda: tiny_service.generate(load_image(sample_image), SMALL, progress=hold))
    worker.start()
    try:
        assert started.wait(30)
        with pytest.raises(BusyError):
            tiny_service.generate(load_image(sample_image), SMALL)
    finally:
        release.set()
        worker.join(60)


@pytest.mark.parametrize("values, message", [
    ({**SMALL, "prompt": "  "}, "Prompt: please describe"),
    ({**SMALL, "resolution": 100}, r"Resolution \(short side\): must be one of"),
    ({**SMALL, "num_frames": 1000}, "Frames: must be at most 64"),
])
def test_bad_input_is_a_clear_message(tiny_service, sample_image, values, message):
    with pytest.raises(RequestError, match=message):
        tiny_service.generate(load_image(sample_image), values)


def test_no_image_and_unreadable_image(tiny_service, tmp_path):
    with pytest.raises(RequestError, match="input image"):
        tiny_service.generate(None, SMALL)
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    with pytest.raises(RequestError, match="Input image: not an image"):
        load_image(bad)


def test_history_lists_outputs_with_their_sidecars(tiny_service, sample_image):
    result = tiny_service.generate(load_image(sample_image), {**SMALL, "seed": 5})
    entries = tiny_service.history()
    assert entries[0]["video_path"] == str(result.video_path) and entries[0]["seed"] == 5


def test_idle_unload_only_after_the_idle_time(tiny_service, sample_image):
    tiny_service.generate(load_image(sample_image), SMALL)
    assert tiny_service.unload_if_idle(idle_minutes=60) is None           # just used: kept
    tiny_service.last_activity -= 61 * 60
    result = tiny_service.unload_if_idle(idle_minutes=60)
    assert result["unloaded"] and tiny_service.runner.state().status == "not loaded"
    tiny_service.runner.load()                                              # leave it loaded for other tests


def test_a_panorama_is_cropped_with_a_notice_naming_both_sizes(tiny_service, tmp_path):
    from tests.conftest import make_image

    wide = make_image(tmp_path / "panorama.png", 2400, 600)
    result = tiny_service.generate(str(wide), {**SMALL, "num_inference_steps": 1})
    notes = [n for n in result.input_notes if n.key == "image_cropped"]
    assert len(notes) == 1
    assert "2400x600" in notes[0].text("en") and "512x256" in notes[0].text("en") and "cropped" in notes[0].text("en")
    assert "裁掉" in notes[0].text("zh")
    square = make_image(tmp_path / "square.png", 600, 600)
    assert not tiny_service.generate(str(square), {**SMALL, "num_inference_steps": 1}).input_notes


def test_fit_image_pads_a_panorama_whole_into_the_video_frame_or_leaves_cropping_to_the_pipeline():
    from PIL import Image

    from i2v.core.request import build_request
    from i2v.service import fit_image

    panorama = Image.new("RGB", (2400, 600), (255, 0, 0))
    panorama.paste((0, 0, 255), (1200, 0, 2400, 600))          # left half red, right half blue
    padded, notes = fit_image(panorama, build_request(panorama.size, prompt="x", resolution=256, image_fit="pad"))
    assert padded.size == (512, 256) and [n.key for n in notes] == ["image_padded"]
    assert padded.getpixel((256, 0)) == (0, 0, 0) and padded.getpixel((256, 255)) == (0, 0, 0)   # bars
    assert padded.getpixel((2, 128))[0] > 200 and padded.getpixel((509, 128))[2] > 200   # both ends kept
    kept, notes = fit_image(panorama, build_request(panorama.size, prompt="x", resolution=256))
    assert kept is panorama and [n.key for n in notes] == ["image_cropped"]              # the pipeline crops
    square = Image.new("RGB", (600, 600))
    assert fit_image(square, build_request(square.size, prompt="x", image_fit="pad")) == (square, [])


def test_a_padded_panorama_runs_says_so_and_records_the_choice(tiny_service, tmp_path):
    from tests.conftest import make_image

    wide = make_image(tmp_path / "panorama.png", 2400, 600)
    result = tiny_service.generate(str(wide), {**SMALL, "num_inference_steps": 1, "image_fit": "pad"})
    assert [n.key for n in result.input_notes] == ["image_padded"]
    assert "2400x600" in result.input_notes[0].text("en") and "补黑边" in result.input_notes[0].text("zh")
    assert result.info()["parameters"]["image_fit"] == "pad" and result.info()["parameters"]["width"] == 512
