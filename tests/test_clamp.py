"""clamp / fallback / suggest_config over simulated cards: always fits, never silent, idempotent."""
import dataclasses

import pytest

from i2v.configs import load_memory_model, load_tiers
from i2v.core.clamp import DoesNotFit, clamp
from i2v.core.fallback import LADDER, next_fallback, suggest_config, with_resolution
from i2v.core.memory import predict
from i2v.core.request import build_request
from i2v.core.tiers import select_tier

CARDS_GB = (6, 8, 12, 16, 24, 48, 80)
GB = 10**9
ASKS = (
    dict(resolution=1024, num_frames=32, num_inference_steps=100),
    dict(resolution=768, num_frames=24, num_inference_steps=80),
    dict(resolution=512, num_frames=16, num_inference_steps=50),
    dict(resolution=512, num_frames=64, num_inference_steps=150),
)
IMAGE_SIZES = ((1280, 720), (720, 1280), (640, 640))


@pytest.fixture(scope="module")
def model():
    return load_memory_model()


def asked(values, image_size=(1280, 720)):
    return build_request(image_size, prompt="a cat", **values)


def changed_fields(before, after):
    return {f.name for f in dataclasses.fields(before) if getattr(before, f.name) != getattr(after, f.name)}


@pytest.mark.parametrize("card", CARDS_GB)
@pytest.mark.parametrize("values", ASKS)
@pytest.mark.parametrize("image_size", IMAGE_SIZES)
@pytest.mark.parametrize("with_tier", [False, True])
def test_clamp_fits_lists_changes_and_is_idempotent(model, card, values, image_size, with_tier):
    available = card * GB
    tier = select_tier(load_tiers(), "cuda", available) if with_tier else None
    request = asked(values, image_size)
    fitted, adjustments = clamp(request, available, model, tier)
    assert predict(model, fitted).peak_bytes <= available
    assert changed_fields(request, fitted) == {a.field for a in adjustments}
    assert all(a.asked != a.got and a.reason for a in adjustments)
    assert fitted.width % 8 == 0 and fitted.height % 8 == 0
    again, more = clamp(fitted, available, model, tier)
    assert again == fitted and more == []


@pytest.mark.parametrize("card", CARDS_GB)
def test_fitting_request_is_unchanged(model, card):
    for values in ASKS + (dict(resolution=256, num_frames=8),):
        for offload in ("none", "model", "sequential"):
            request = asked(values).replace(offload=offload)
            if predict(model, request).peak_bytes <= card * GB:
                assert clamp(request, card * GB, model) == (request, [])
                break


def test_least_offload_before_quality(model):
    request = asked(dict(resolution=768, num_frames=24))
    fits_with_model_offload = predict(model, request, "model").peak_bytes
    fitted, _ = clamp(request, fits_with_model_offload, model)
    assert (fitted.num_frames, fitted.resolution) == (24, 768) and fitted.offload == "model"


def test_steps_capped_by_time_budget_and_tier(model):
    request = asked(dict(resolution=512, num_frames=16, num_inference_steps=100))
    fitted, adjustments = clamp(request, 80 * GB, model, seconds_per_step=2.0, time_budget_s=60)
    assert fitted.num_inference_steps == 30
    assert [a.field for a in adjustments] == ["num_inference_steps"]
    tier = select_tier(load_tiers(), "cuda", 8 * GB)
    fitted, _ = clamp(request, 80 * GB, model, tier)
    assert fitted.num_inference_steps == tier.max_steps


def test_nothing_fits_raises_with_figures(model):
    with pytest.raises(DoesNotFit, match="available"):
        clamp(asked(dict(resolution=512, num_frames=16)), GB // 2, model)


@pytest.mark.parametrize("values", ASKS)
def test_each_fallback_notch_strictly_lowers(model, values):
    request, seen = asked(values), []
    while (step := next_fallback(request, model)) is not None:
        lower, description = step
        assert predict(model, lower).peak_bytes < predict(model, request).peak_bytes, description
        seen.append(description)
        request = lower
    assert request.offload == "sequential" and request.num_frames == 2
    assert any("offload" in d for d in seen) and any("resolution" in d for d in seen)


def test_ladder_order_knobs_then_frames_then_resolution_then_sequential(model):
    # decode 32 frames at once: the VAE decode is the peak phase, so the decode notch comes first
    request, kinds = asked(dict(resolution=1024, num_frames=32)).replace(decode_chunk_size=32), []
    while (step := next_fallback(request, model)) is not None and request.offload != "sequential":
        request, description = step
        kinds.append(description.split()[0])
    first = {k: kinds.index(k) for k in dict.fromkeys(kinds)}
    assert list(first) == ["VAE", "model", "UNet", "fewer", "lower", "sequential"]
    assert len(LADDER) == 6


@pytest.mark.parametrize("card", CARDS_GB)
def test_suggest_config_fits_free_memory(model, card):
    request = asked(dict(resolution=1024, num_frames=32))
    suggestion = suggest_config(request, card * GB, model)
    assert suggestion is not None
    fitted, steps = suggestion
    assert predict(model, fitted).peak_bytes <= card * GB
    assert bool(steps) == (fitted != request)


def test_with_resolution_keeps_aspect():
    r = asked(dict(resolution=768), (1280, 720))
    smaller = with_resolution(r, 512)
    assert (smaller.height, smaller.resolution) == (512, 512)
    assert smaller.width / smaller.height == pytest.approx(r.width / r.height, rel=0.02)
