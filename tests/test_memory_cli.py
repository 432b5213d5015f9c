"""The memory subcommands (estimate, profile-memory, calibrate: i2v.cli_memory; doctor: i2v.cli_doctor) through
main.py's argparse wiring, where each module registers its own."""
import json

import pytest

from i2v.cli import build_parser, main


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


CARD = ["--device-memory", "24", "--host-memory", "64"]     # a fixed simulated device, never this machine's


def test_estimate_json_reports_the_contract(capsys):
    square = run_json(capsys, ["estimate", "--resolution", "512", "--frames", "16", "--json", *CARD])
    assert (square["request"]["width"], square["request"]["height"]) == (512, 512)
    assert {"peak_gib", "host_ram_gib", "fits", "plan", "adjustments", "seconds_per_step"} <= set(square)
    assert set(square["plan"]) == {"offload", "cfg_split", "chunk_tokens", "weights_dtype", "decode_chunk",
                                   "vae_tiling", "text_encoder_cpu"}
    assert square["fits"] is True and square["adjustments"] == [] and square["seconds_per_step"] > 0
    assert square["peak_gib"] > 0 and len(square["phases"]) == 5 and square["label"] == "predicted"
    assert "not yet calibrated" in square["note"]
    wide = run_json(capsys, ["estimate", "--resolution", "512", "--aspect", "16:9", "--frames", "16", "--json",
                             "--offload", "none", "--cfg-split", "--chunk-tokens", "0", *CARD])
    plain = run_json(capsys, ["estimate", "--resolution", "512", "--aspect", "16:9", "--frames", "16", "--json",
                              "--offload", "none", "--no-cfg-split", "--chunk-tokens", "0", *CARD])
    assert wide["plan"]["cfg_split"] is True and plain["plan"]["cfg_split"] is False
    assert wide["peak_gib"] < plain["peak_gib"]
    model = run_json(capsys, ["estimate", "--width", "912", "--height", "512", "--frames", "16",
                              "--offload", "model", "--no-cfg-split", "--chunk-tokens", "0", "--json", *CARD])
    assert model["plan"]["offload"] == "model" and model["peak_gib"] < plain["peak_gib"]
    fp32 = run_json(capsys, ["estimate", "--resolution", "512", "--frames", "16", "--dtype", "fp32", "--json",
                             "--offload", "none", "--no-cfg-split", "--chunk-tokens", "0", *CARD])
    assert fp32["peak_gib"] > square["peak_gib"]


@pytest.mark.parametrize("width, height, frames, card", [(1024, 1024, 32, 8), (1280, 704, 16, 6), (512, 512, 16, 4)])
def test_small_cards_fit_without_touching_settings(capsys, width, height, frames, card):
    """The issue's promise: these fit exactly (no fp8, no VAE tiling) with the user's settings unchanged."""
    report = run_json(capsys, ["estimate", "--width", str(width), "--height", str(height), "--frames", str(frames),
                               "--device-memory", str(card), "--host-memory", "32", "--json"])
    assert report["fits"] is True and report["adjustments"] == []
    assert report["plan"]["weights_dtype"] == "fp16" and report["plan"]["vae_tiling"] is False
    assert report["peak_gib"] <= card and report["label"] == "predicted"


def test_estimate_rejects_bad_plan_values(capsys):
    with pytest.raises(SystemExit):
        main(["estimate", "--resolution", "512", "--frames", "16", "--offload", "disk"])
    with pytest.raises(Exception, match="chunk_tokens"):
        main(["estimate", "--resolution", "512", "--frames", "16", "--chunk-tokens", "-5"])


def test_estimate_text_output(capsys):
    assert main(["estimate", "--resolution", "256", "--frames", "8"]) == 0
    out = capsys.readouterr().out
    assert "denoise" in out and "peak" in out and "predicted" in out


def test_estimate_rejects_width_without_height():
    with pytest.raises(SystemExit):
        main(["estimate", "--width", "512", "--frames", "8"])


def test_doctor_json(capsys):
    report = run_json(capsys, ["doctor", "--json"])
    assert report["device"]["kind"] in ("cuda", "cpu") and report["device"]["total_bytes"] > 0
    assert {"attention", "ffmpeg", "model_cached", "recommended_preset", "presets"} <= set(report)
    assert len(report["presets"]) >= 3


def test_calibrate_without_cuda_exits_non_zero(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["calibrate"]) != 0
    assert "CUDA" in capsys.readouterr().err


def test_every_subcommand_has_a_handler():
    parser = build_parser()
    for argv in (["doctor"], ["profile-memory"], ["calibrate"], ["estimate", "--resolution", "512", "--frames", "8"]):
        assert callable(parser.parse_args(argv).func)


def test_doctor_gives_the_figures_of_the_model_that_would_run(capsys, monkeypatch):
    """Without weights (`auto` falls back to the tiny model) doctor answers with the tiny model's own figures,
    lists every family's weights, and `--model` picks another model's."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("I2V_MODEL", raising=False)
    auto = run_json(capsys, ["doctor", "--json"])
    tiny = run_json(capsys, ["doctor", "--json", "--model", "tiny"])
    assert auto["model"]["kind"] == "tiny" and not auto["model"]["full_size"]
    assert auto["presets"] == tiny["presets"] and auto["model"]["hash"] == tiny["model"]["hash"]
    from i2v.models import FAMILIES

    assert [f["family"] for f in auto["families"]] == [f.name for f in FAMILIES]     # every family, once
    assert {"i2vgen-xl", "wan2.2-ti2v-5b"} <= {f["family"] for f in auto["families"]}
    full = run_json(capsys, ["doctor", "--json", "--model", "ali-vilab/i2vgen-xl"])
    assert full["model"]["full_size"] and max(p["peak_gib"] for p in full["presets"]) > max(
        p["peak_gib"] for p in tiny["presets"])
