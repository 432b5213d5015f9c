"""The ladder, the clamp and the OOM fallback over simulated cards (fixed budgets, never this machine's memory):
always fits, exact before lossy, fastest first, the user's settings kept while any plan fits, never silent,
idempotent."""
import dataclasses

import pytest

from i2v.configs import load_memory_model
from i2v.core.clamp import SETTINGS_FIELDS, DoesNotFit, clamp, fit
from i2v.core.fallback import Ladder, carried_next, next_fallback, suggest_config, with_resolution
from i2v.core.memory import estimate_time, predict
from i2v.core.plans import PLAN_KEYS
from i2v.core.request import GenerationRequest, build_request

GIB = 2**30
CARDS_GIB = (4, 6, 8, 12, 16, 24, 48, 80)
HOST_GIB = 64
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


def sized(width, height, frames):
    return GenerationRequest(prompt="", width=width, height=height, num_frames=frames, fps=16,
                             num_inference_steps=50, guidance_scale=9.0, resolution=min(width, height))


def changed(before, after, names):
    return {name for name in names if getattr(before, name) != getattr(after, name)}


@pytest.mark.parametrize("card", CARDS_GIB)
@pytest.mark.parametrize("values", ASKS)
@pytest.mark.parametrize("image_size", IMAGE_SIZES)
def test_clamp_fits_lists_changes_and_is_idempotent(model, card, values, image_size):
    request = asked(values, image_size)
    result = fit(request, card * GIB, model, host_bytes=HOST_GIB * GIB)
    fitted, adjustments = result.request, result.adjustments
    assert predict(model, fitted).peak_bytes <= card * GIB
    assert predict(model, fitted).host_bytes <= HOST_GIB * GIB
    listed = {a.field for a in adjustments}
    assert changed(request, fitted, SETTINGS_FIELDS) == listed & set(SETTINGS_FIELDS)
    assert listed - set(SETTINGS_FIELDS) == set(fitted.plan.lossy_parts)    # lossy parts are listed, exact ones not
    assert all(a.asked != a.got and a.reason for a in adjustments)
    assert fitted.width % 8 == 0 and fitted.height % 8 == 0
    again, more = clamp(fitted, card * GIB, model, host_bytes=HOST_GIB * GIB)
    assert again == fitted and more == []


@pytest.mark.parametrize("card", CARDS_GIB)
@pytest.mark.parametrize("values", ASKS)
def test_settings_kept_while_any_plan_fits_and_exact_before_lossy(model, card, values):
    request = asked(values)
    ladder = Ladder(request, model)
    fitted, adjustments = clamp(request, card * GIB, model)
    fitting = [(plan, pr) for plan, pr, _ in ladder.ranked if pr.peak_bytes <= card * GIB]
    if fitting:
        assert changed(request, fitted, SETTINGS_FIELDS) == set()
        if any(not plan.lossy for plan, _ in fitting):
            assert not fitted.plan.lossy and adjustments == []


def test_fastest_fitting_plan_is_chosen(model):
    request = asked(dict(resolution=768, num_frames=24))
    for card in (6, 8, 12, 24):
        fitted, _ = clamp(request, card * GIB, model)
        seconds = estimate_time(model, fitted, 100.0).total_s(request.num_inference_steps)
        for plan, prediction, _ in Ladder(request, model).ranked:
            if prediction.peak_bytes <= card * GIB and not plan.lossy:
                other = estimate_time(model, request.with_plan(plan), 100.0).total_s(request.num_inference_steps)
                assert seconds <= other + 1e-9


def test_ladder_is_exact_then_lossy_and_each_next_smaller_is_lower(model):
    request = asked(dict(resolution=768, num_frames=24))
    ladder = Ladder(request, model)
    lossy_flags = [plan.lossy for plan, _, _ in ladder.ranked]
    assert lossy_flags == sorted(lossy_flags)           # every exact plan before any lossy one
    plan = ladder.ranked[0][0]
    while (smaller := ladder.next_smaller(plan)) is not None:
        assert predict(model, request.with_plan(smaller)).peak_bytes < predict(model, request.with_plan(plan)).peak_bytes
        plan = smaller


def test_big_plain_request_gets_a_plan_not_a_cut_on_a_mid_card(model):
    request = asked(dict(resolution=768, num_frames=24))
    plain = predict(model, request).peak_bytes
    fitted, adjustments = clamp(request, int(plain * 0.6), model, host_bytes=HOST_GIB * GIB)
    assert adjustments == [] and (fitted.num_frames, fitted.resolution) == (24, 768)
    assert fitted.plan != request.plan


def test_host_ram_counts(model):
    """A plan whose host RAM the machine lacks does not fit: group offload pins about 2x the weights."""
    request = sized(1024, 1024, 32)
    roomy, _ = clamp(request, 8 * GIB, model, host_bytes=HOST_GIB * GIB)
    group_host = predict(model, request.replace(offload="group")).host_bytes
    tight_host = group_host - 1
    tight, _ = clamp(request, 8 * GIB, model, host_bytes=tight_host)
    assert tight.offload != "group"
    assert predict(model, tight).host_bytes <= tight_host


def test_forced_parts_are_kept(model):
    request = sized(1280, 704, 16)
    for forced in ({"offload": "sequential"}, {"cfg_split": False}, {"chunk_tokens": 0}, {"weights_dtype": "fp8"}):
        fitted, _ = clamp(request, 24 * GIB, model, forced=forced)
        for key, value in forced.items():
            assert getattr(fitted.plan, key) == value


def test_steps_capped_only_by_a_time_budget(model):
    request = asked(dict(resolution=512, num_frames=16, num_inference_steps=150))
    fitted, adjustments = clamp(request, 80 * GIB, model)
    assert fitted.num_inference_steps == 150 and adjustments == []
    fitted, adjustments = clamp(request, 80 * GIB, model, seconds_per_step=2.0, time_budget_s=60)
    assert fitted.num_inference_steps == 30
    assert [a.field for a in adjustments] == ["num_inference_steps"]


def test_nothing_fits_raises_with_figures(model):
    with pytest.raises(DoesNotFit, match="available"):
        clamp(asked(dict(resolution=512, num_frames=16)), GIB // 4, model)


@pytest.mark.parametrize("values", ASKS)
def test_each_fallback_step_strictly_lowers_plans_before_settings(model, values):
    request, seen = asked(values), []
    while (step := next_fallback(request, model)) is not None:
        lower, description = step
        assert predict(model, lower).peak_bytes < predict(model, request).peak_bytes, description
        seen.append(description)
        request = lower
    kinds = ["plan" if d.startswith("plan") else "settings" for d in seen]
    assert kinds[0] == "plan" and "settings" in kinds
    assert request.num_frames == 2 and request.resolution == 256


def test_decode_oom_changes_only_what_acts_on_the_decode(model):
    request = asked(dict(resolution=1024, num_frames=32)).replace(decode_chunk_size=8)
    step = next_fallback(request, model, phase="decode")
    assert step is not None
    lower = step[0]
    assert changed(request, lower, ("num_frames", "width", "height", "cfg_split", "chunk_tokens",
                                    "weights_dtype")) == set()
    decode = lambda r: next(p.total_bytes for p in predict(model, r).phases if p.phase == "decode")  # noqa: E731
    assert decode(lower) < decode(request)


@pytest.mark.parametrize("card", CARDS_GIB)
def test_suggest_config_fits_free_memory(model, card):
    request = asked(dict(resolution=1024, num_frames=32))
    suggestion = suggest_config(request, card * GIB, model)
    assert suggestion is not None
    fitted, steps = suggestion
    assert predict(model, fitted).peak_bytes <= card * GIB
    assert bool(steps) == (fitted != request)


def test_with_resolution_keeps_aspect():
    r = asked(dict(resolution=768), (1280, 720))
    smaller = with_resolution(r, 512)
    assert (smaller.height, smaller.resolution) == (512, 512)
    assert smaller.width / smaller.height == pytest.approx(r.width / r.height, rel=0.02)


def test_plan_round_trips_through_the_request():
    request = sized(512, 512, 16)
    plan = request.plan.replace(offload="group", cfg_split=True, chunk_tokens=16384, weights_dtype="fp8",
                                decode_chunk=2, vae_tiling=True)
    assert request.with_plan(plan).plan == plan
    assert set(plan.as_dict()) == set(PLAN_KEYS) == {"offload", "cfg_split", "chunk_tokens", "weights_dtype",
                                                     "decode_chunk", "vae_tiling", "text_encoder_cpu"}
    assert plan.lossy and set(plan.lossy_parts) == {"weights_dtype", "vae_tiling"}
    assert not dataclasses.replace(request).plan.lossy


@pytest.mark.parametrize("card", (8, 16, 24))
def test_the_fitted_request_carries_the_ranking_its_fallback_walks(model, card):
    """fit(carry=True): the plan chosen is the first of the carried ranking that fits; every OOM step walks it
    with strictly lower predicted peaks, forced parts fixed; equality and as_dict ignore it."""
    forced = {"cfg_split": True}
    plain = fit(asked(ASKS[1]), card * GIB, model, forced=forced).request
    request = fit(asked(ASKS[1]), card * GIB, model, forced=forced, carry=True).request
    assert request == plain and request.as_dict() == plain.as_dict() and plain.ranking is None
    assert request.ranking.entry(request.plan).peak_bytes == predict(model, request).peak_bytes
    while (step := carried_next(request)) is not None:
        assert predict(model, step[0]).peak_bytes < predict(model, request).peak_bytes, step[1]
        assert step[0].plan.cfg_split
        request = step[0]
    assert request.num_frames < ASKS[1]["num_frames"] or request.resolution < ASKS[1]["resolution"]
