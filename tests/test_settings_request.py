import re
import pytest

from i2v.core.request import RequestError, build_request, size_for_aspect
from i2v.core.settings import MAX_ASPECT_RATIO, SETTINGS, SIZE_MULTIPLE, defaults


def test_defaults_follow_the_pipeline_and_pass_validation():
    request = build_request((1280, 704), prompt="waves")
    d = defaults()
    assert (request.num_frames, request.num_inference_steps, request.guidance_scale, request.fps) == (
        d["num_frames"], d["num_inference_steps"], d["guidance_scale"], d["fps"])
    assert request.height == d["resolution"]


@pytest.mark.parametrize("image_size, resolution, expected", [
    ((1280, 720), 512, (912, 512)),      # landscape: short side = resolution
    ((720, 1280), 512, (512, 912)),      # portrait
    ((500, 500), 768, (768, 768)),
    ((4000, 1000), 256, (512, 256)),     # panorama capped at MAX_ASPECT_RATIO
])
def test_size_for_aspect(image_size, resolution, expected):
    width, height = size_for_aspect(resolution, *image_size)
    assert (width, height) == expected
    assert width % SIZE_MULTIPLE == 0 and height % SIZE_MULTIPLE == 0
    assert max(width, height) / min(width, height) <= MAX_ASPECT_RATIO


def test_every_bad_value_is_named_in_one_message():
    with pytest.raises(RequestError) as info:
        build_request((64, 64), prompt="x", resolution=300, num_frames=0, guidance_scale="high", bogus=1)
    message = str(info.value)
    for word in ("Resolution", "Frames", "Guidance scale", "bogus", "300", "'high'"):
        assert word in message
    chinese = info.value.text("zh")
    for word in ("分辨率", "帧数", "引导系数", "bogus", "300"):
        assert word in chinese
    assert "num_frames" not in message and "guidance_scale" not in chinese     # labels, not internal names


@pytest.mark.parametrize("field, value, key", [
    ("num_frames", float("nan"), "field_not_finite"), ("guidance_scale", float("inf"), "field_not_finite"),
    ("fps", "fast", "field_not_number"), ("num_frames", 7.5, "field_not_whole"), ("seed", -2, "field_too_small"),
    ("num_inference_steps", 10**9, "field_too_large"), ("resolution", 333, "field_not_choice"),
    ("prompt", 12, "field_not_text"), ("prompt", "x" * 5000, "field_too_long"),
])
def test_each_bad_value_gets_its_own_message(field, value, key):
    values = {"prompt": "a cat", field: value}
    with pytest.raises(RequestError) as info:
        build_request((64, 64), **values)
    assert info.value.key == key and info.value.params["field"] == field


def test_numbers_as_text_are_accepted_and_prompts_cleaned():
    request = build_request((64, 64), prompt="  a\x00 cat\u202e\x1b[31m  ", num_frames="12", resolution="256",
                            guidance_scale="7.5")
    assert (request.num_frames, request.resolution, request.guidance_scale) == (12, 256, 7.5)
    assert request.prompt == "a cat[31m"


def test_limits_come_from_the_settings_table():
    for setting in SETTINGS:
        if setting.maximum is not None:
            with pytest.raises(RequestError, match=re.escape(setting.label)):
                build_request((64, 64), prompt="x", **{setting.name: setting.kind(setting.maximum + 1)})
            build_request((64, 64), prompt="x", **{setting.name: setting.kind(setting.maximum)})


def test_whole_floats_from_widgets_are_accepted():
    request = build_request((64, 64), prompt="x", num_frames=8.0, seed=3.0, resolution=256.0)
    assert (request.num_frames, request.seed, request.resolution) == (8, 3, 256)
    with pytest.raises(RequestError, match="whole number"):
        build_request((64, 64), prompt="x", num_frames=8.5)
