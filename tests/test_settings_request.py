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
    for word in ("resolution", "num_frames", "guidance_scale", "bogus", "300"):
        assert word in message


def test_limits_come_from_the_settings_table():
    for setting in SETTINGS:
        if setting.maximum is not None:
            with pytest.raises(RequestError, match=setting.name):
                build_request((64, 64), prompt="x", **{setting.name: setting.kind(setting.maximum + 1)})
            build_request((64, 64), prompt="x", **{setting.name: setting.kind(setting.maximum)})


def test_whole_floats_from_widgets_are_accepted():
    request = build_request((64, 64), prompt="x", num_frames=8.0, seed=3.0, resolution=256.0)
    assert (request.num_frames, request.seed, request.resolution) == (8, 3, 256)
    with pytest.raises(RequestError, match="whole number"):
        build_request((64, 64), prompt="x", num_frames=8.5)
