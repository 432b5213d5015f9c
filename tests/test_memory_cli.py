"""The memory subcommands through their own argparse wiring (i2v.cli_memory.add_parsers)."""
import json

import pytest

from i2v.cli_memory import build_parser, main


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_estimate_json_reports_phases_and_peak(capsys):
    square = run_json(capsys, ["estimate", "--resolution", "512", "--frames", "16", "--json"])
    assert (square["request"]["width"], square["request"]["height"]) == (512, 512)
    assert square["peak_gib"] > 0 and len(square["phases"]) == 5 and square["label"] == "predicted"
    wide = run_json(capsys, ["estimate", "--resolution", "512", "--aspect", "16:9", "--frames", "16", "--json"])
    assert wide["request"]["width"] > 512 and wide["peak_gib"] > square["peak_gib"]
    model = run_json(capsys, ["estimate", "--width", "912", "--height", "512", "--frames", "16",
                              "--offload", "model", "--json"])
    assert model["peak_gib"] < wide["peak_gib"]
    fp32 = run_json(capsys, ["estimate", "--resolution", "512", "--frames", "16", "--dtype", "fp32", "--json"])
    assert fp32["peak_gib"] > square["peak_gib"]


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
