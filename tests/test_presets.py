"""Presets and tiers as data: validation, statuses, recommendation."""
import pytest

from i2v.configs import load_memory_model, load_presets, load_tiers, read_toml
from i2v.core.presets import STATUS_LABELS, STATUS_RANK, parse_presets, preset_statuses, recommend_preset
from i2v.core.tables import ConfigError
from i2v.core.tiers import parse_tiers, select_tier
from i2v.paths import configs_dir

GB = 10**9
SEED_PRESETS = {"快速预览": (512, 8, 30), "标准质量": (512, 16, 50), "高质量": (768, 24, 80)}


@pytest.fixture(scope="module")
def model():
    return load_memory_model()


def test_presets_file_holds_the_seed_presets():
    presets = {p.name: p for p in load_presets()}
    for name, (resolution, frames, steps) in SEED_PRESETS.items():
        p = presets[name]
        assert (p.resolution, p.num_frames, p.num_inference_steps) == (resolution, frames, steps)
    assert presets["高质量"].guidance_scale == 10.0


def test_unknown_or_missing_keys_are_errors():
    data = read_toml(configs_dir() / "presets.toml")
    bad = {"preset": [{**data["preset"][0], "colour": "red"}]}
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        parse_presets(bad)
    missing = {"preset": [{k: v for k, v in data["preset"][0].items() if k != "fps"}]}
    with pytest.raises(ConfigError, match="missing key 'fps'"):
        parse_presets(missing)
    with pytest.raises(ConfigError):
        parse_presets({"preset": [{**data["preset"][0], "num_frames": 1000}]})
    with pytest.raises(ConfigError):
        parse_presets({**data, "extra": 1})
    tiers = read_toml(configs_dir() / "tiers.toml")
    with pytest.raises(ConfigError):
        parse_tiers({"tier": [{**tiers["tier"][0], "speed": 1}]})


def test_tier_selection_by_total_memory():
    tiers = load_tiers()
    assert select_tier(tiers, "cpu", 64 * GB).device == "cpu"
    names = [select_tier(tiers, "cuda", gb * GB).name for gb in (6, 8, 12, 16, 24, 48, 80)]
    speeds = [select_tier(tiers, "cuda", gb * GB).tflops for gb in (6, 8, 12, 16, 24, 48, 80)]
    assert speeds == sorted(speeds) and len(set(names)) > 2


def test_recommendation_grows_with_memory(model):
    presets = load_presets()
    order = [p.id for p in presets]
    picks = []
    for gb in (6, 8, 12, 16, 24, 48, 80):
        best, statuses = recommend_preset(presets, model, gb * GB)
        assert best is not None and best.status in ("fits", "fits_with_offload", "fits_sequential", "fits_lossy")
        assert all(s.label == STATUS_LABELS[s.status] for s in statuses)
        picks.append(order.index(best.preset.id))
    assert picks == sorted(picks) and picks[-1] == len(order) - 1


@pytest.mark.parametrize("gb", (6, 16))
def test_recommended_is_highest_in_the_best_class(model, gb):
    presets = load_presets()
    best, statuses = recommend_preset(presets, model, gb * GB)
    rank = [next(i for i, group in enumerate(STATUS_RANK) if s.status in group) if s.status != "does_not_fit"
            else len(STATUS_RANK) for s in statuses]
    candidates = [s for s, r in zip(statuses, rank) if r == min(rank)]
    assert best == candidates[-1]


def test_statuses_report_peaks_and_honest_time(model):
    tier = select_tier(load_tiers(), "cpu", 32 * GB)
    statuses = preset_statuses(load_presets(), model, 32 * GB, "fp32", tier=tier)
    for s in statuses:
        assert s.peak_gib > 0 and s.seconds_estimate and s.seconds_estimate > 60
    # the largest preset fits 32 GB of RAM only thanks to an exact plan (CFG split / chunked UNet) ...
    assert statuses[-1].status == "fits" and statuses[-1].request.plan.chunk_tokens > 0
    assert not statuses[-1].request.plan.lossy
    # ... and nothing fits 1 GB: memory decides, not a tier
    small = preset_statuses(load_presets(), model, 1 * GB, "fp32", tier=tier)
    assert {s.status for s in small} == {"does_not_fit"}


@pytest.mark.parametrize("card", ["cuda,6,5.5", "cuda,8,7.5", "cuda,12,11", "cuda,24,23", "cpu,32,24,32"])
def test_each_preset_label_is_the_live_estimate_of_its_settings(monkeypatch, card):
    """One verdict: the preset list's status, peak and time are the estimate panel's for the same settings,
    on four simulated cards and a CPU (also after a measured run changes the speed)."""
    from i2v.advisor import Advisor
    from i2v.core.presets import status_from_estimate
    from i2v.core.request import build_request

    monkeypatch.setenv("I2V_SIMULATED_DEVICE", card)
    advisor = Advisor()
    for measured in (False, True):
        if measured:            # a finished run: the time model now uses the measured speed
            advisor.record_denoise(build_request((1280, 720), prompt="x", resolution=512, num_frames=16), 40.0, 10)
        status = advisor.presets_status((1280, 720))
        assert status["presets"]
        for preset in status["presets"]:
            estimate = advisor.estimate(preset["values"], (1280, 720))
            assert preset["status"] == status_from_estimate(estimate)
            assert (preset["peak_gib"], preset["seconds_estimate"], preset["plan"]) == \
                (estimate["peak_gib"], estimate["seconds_estimate"], estimate["plan"])
            assert preset["speed"] == ("measured" if measured else "estimated")
        recommended = next((p for p in status["presets"] if p["name"] == status["recommended"]), None)
        if recommended is not None:   # the recommended preset is never one its own estimate says does not fit
            assert advisor.estimate(recommended["values"], (1280, 720))["fits"]


def test_the_recommendation_prefers_a_preset_that_finishes_in_reasonable_time():
    from i2v.core.presets import RECOMMENDED_MAX_SECONDS, recommended_index

    fits = ["fits", "fits", "fits", "fits"]
    assert recommended_index(fits) == 3                                        # times unknown: the highest
    quick = RECOMMENDED_MAX_SECONDS / 2
    assert recommended_index(fits, [quick / 4, quick, 3 * quick, 9 * quick]) == 1   # the highest within the limit
    assert recommended_index(fits, [3 * quick, 4 * quick, 9 * quick, 20 * quick]) == 0   # none: the quickest
    assert recommended_index(["does_not_fit", "fits_lossy", "fits", "does_not_fit"], [1, 1, 5000, 1]) == 2
    assert recommended_index(["does_not_fit"] * 2, [1, 1]) is None
