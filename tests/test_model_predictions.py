"""Predictions for the model that runs: the tiny model's own traced profile (checked against a real CPU run of the
tiny pipeline), the hash cache, a folder with other dimensions, and `main.py generate` / `estimate` with it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from i2v import profiles
from i2v.core.memory import phase_activations
from i2v.core.request import GenerationRequest
from tests.conftest import ROOT

# A live CPU run of the tiny pipeline, its bytes counted as i2v/profile.py counts them (weights and inputs
# excluded) but with the CPU's own SDPA: one UNet step must equal the interpolated traced table within
# STEP_TOLERANCE; the whole run (encoders, denoising, the app's chunked decode and the float32 video) must not
# exceed the predicted largest phase, which may be above it by at most WHOLE_RUN_MARGIN (measured: +22%, the
# decode's modelled copies of the video). Both before activation_overhead, which models the allocator.
STEP_TOLERANCE = 0.02
WHOLE_RUN_MARGIN = 0.30
LIVE_SHAPES = ((256, 256, 4), (512, 384, 8))          # width, height, frames (not traced grid points)
FAR_BELOW = 0.2                                       # the tiny model's peak is under this share of the full one


def tiny_source():
    return profiles.source_for("tiny", "tiny")


def tiny_model_of(dtype: str = "fp32"):
    from i2v.configs import memory_model_for
    from i2v.core.memory import for_device

    kept = profiles.profile_for(tiny_source(), dtype)
    assert kept.origin == profiles.COMMITTED and not kept.full_size     # configs/profiles/, never traced here
    return for_device(memory_model_for(kept.profile, calibrated=False), "cpu")


def request_for(width: int, height: int, frames: int, **plan) -> GenerationRequest:
    return GenerationRequest(prompt="a boat", width=width, height=height, num_frames=frames, fps=8,
                             num_inference_steps=1, guidance_scale=7.5, resolution=min(width, height),
                             decode_chunk_size=frames, **plan)


# ---------------------------------------------------------------- which profile
def test_the_committed_full_size_profile_is_recognised_by_the_hash_of_configs_model():
    full = profiles.profile_for(profiles.full_size_source(), "fp16")
    assert full.origin == profiles.FULL_SIZE and full.full_size and full.hash == profiles.full_size_hash()
    # bookkeeping keys and keys left at their defaults do not change the hash (another library version)
    configs = profiles.full_size_configs()
    configs["unet"]["_diffusers_version"] = "0.99.0"
    configs["text_encoder"].pop("hidden_act")               # the file says gelu: a real difference ...
    assert profiles.config_hash(configs) != profiles.full_size_hash()
    configs["text_encoder"]["hidden_act"] = "gelu"
    configs["text_encoder"]["transformers_version"] = "4.0.0"
    del configs["vae"]["use_quant_conv"]                     # ... True is the default
    assert profiles.config_hash(configs) == profiles.full_size_hash()
    assert tiny_source().hash != profiles.full_size_hash()


def test_configs_not_on_disk_fall_back_to_the_full_size_profile_and_say_so(tmp_path):
    missing = profiles.source_for("local", str(tmp_path))
    kept = profiles.profile_for(missing, "fp32", cache=tmp_path / "cache")
    assert kept.origin == profiles.FALLBACK and kept.full_size and "full-size" in kept.info()["note"]
    assert not (tmp_path / "cache").exists()


def test_the_tiny_profile_is_the_tiny_models_own_and_matches_a_fresh_trace():
    from i2v import profile
    from i2v.tiny_model import tiny_configs

    kept = profiles.profile_for(tiny_source(), "fp32")
    phases = kept.profile["dtypes"]["fp32"]["phases"]
    assert kept.profile["grid"]["kind"] == "small"
    meta = profile.build_meta_model("fp32", configs=tiny_configs())
    assert profile.trace_vae_encode(meta, 256, 256) == next(p["bytes"] for p in phases["vae_encode"]
                                                             if p["width"] == 256)
    peak, _ = profile.trace_unet_step(meta, 256, 256, 4, 2)
    assert peak == next(p["bytes"] for p in phases["denoise_cfg"] if (p["width"], p["frames"]) == (256, 4))
    weights = kept.profile["dtypes"]["fp32"]["weights"]["unet"]
    assert weights["params"] == sum(p.numel() for p in meta.unet.parameters()) < 1_000_000


# ---------------------------------------------------------------- the tiny model's prediction against a live run
def live_activation_peaks(loaded, width: int, height: int, frames: int) -> tuple[int, int]:
    """(one denoise step, the whole run) activation peaks of the real tiny pipeline on CPU (fp32) as the app runs
    it (i2v.pipeline.sample_latents + decode_frames), counted as profile.py counts (its PeakTracker, weights
    and inputs excluded) with the CPU's own SDPA."""
    import torch
    from PIL import Image

    from i2v import pipeline, profile

    pipe = loaded.pipe
    weights = torch.nn.ModuleList([pipe.unet, pipe.vae, pipe.text_encoder, pipe.image_encoder])
    request = request_for(width, height, frames)
    image = Image.new("RGB", (width, height), (120, 60, 30))
    whole = profile.trace_peak(weights, lambda: pipeline.decode_frames(    # also sets the plain plan
        loaded, pipeline.sample_latents(loaded, image, request, 0, None), request, None), fused_sdpa=False)
    model = profile.MetaModel("fp32", pipe.unet, pipe.vae, pipe.text_encoder, pipe.image_encoder)
    inputs = profile._unet_inputs(model, width, height, frames, 2)
    step = profile.trace_peak(pipe.unet, lambda: pipe.unet(**inputs)[0], inputs.values(), fused_sdpa=False)
    return step, whole


@pytest.mark.parametrize("width, height, frames", LIVE_SHAPES)
def test_tiny_prediction_matches_a_live_cpu_run_of_the_tiny_pipeline(tiny_runner, width, height, frames):
    model = tiny_model_of("fp32")
    predicted = phase_activations(model, request_for(width, height, frames), "fp32")
    step, whole = live_activation_peaks(tiny_runner.load(), width, height, frames)
    assert predicted["denoise"] == pytest.approx(step, rel=STEP_TOLERANCE), (predicted["denoise"], step)
    largest = max(predicted.values())
    assert whole <= largest <= whole * (1 + WHOLE_RUN_MARGIN), (largest, whole, predicted)


# ---------------------------------------------------------------- the cache, and another folder's figures
def write_folder(folder: Path, components: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}", encoding="utf-8")
    for name, config in components.items():
        (folder / name).mkdir()
        (folder / name / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def wider(tmp_path_factory):
    """A diffusers folder of the tiny model with a wider UNet, traced once into a fresh cache (a subprocess)."""
    from i2v.tiny_model import tiny_configs

    tmp = tmp_path_factory.mktemp("wider")
    components = tiny_configs()
    components["unet"]["block_out_channels"] = [32, 32, 64, 64]
    folder = write_folder(tmp / "model", components)
    source = profiles.source_for("local", str(folder))
    before = profiles.TRACES
    first = profiles.profile_for(source, "fp32", cache=tmp / "cache")
    assert profiles.TRACES == before + 1
    return source, first, tmp / "cache"


def test_a_new_model_is_traced_once_and_the_cache_is_used_the_second_time(wider):
    source, first, cache = wider
    assert first.origin == profiles.TRACED and first.path.parent == cache and first.path.is_file()
    assert first.profile["model"]["hash"] == source.hash and first.path.name == f"{source.hash}-fp32.json"
    mtime, traces = first.path.stat().st_mtime_ns, profiles.TRACES
    second = profiles.profile_for(profiles.source_for("local", source.name), "fp32", cache=cache)
    assert second.origin == profiles.CACHED and second.profile == first.profile
    assert profiles.TRACES == traces and first.path.stat().st_mtime_ns == mtime


def test_a_folder_with_other_dimensions_gets_other_figures(wider):
    from i2v.configs import memory_model_for
    from i2v.core.memory import predict

    source, first, _ = wider
    assert source.hash != tiny_source().hash
    request = request_for(512, 512, 16)
    wide = predict(memory_model_for(first.profile, calibrated=False), request, dtype="fp32", device_kind="cpu")
    tiny = predict(tiny_model_of("fp32"), request, dtype="fp32", device_kind="cpu")
    wide_unet = first.profile["dtypes"]["fp32"]["weights"]["unet"]["params"]
    assert wide_unet > 10 * tiny_model_of().tables["fp32"].weights["unet"]["params"]
    denoise = {p.phase: p.activation_bytes for p in wide.phases}["denoise"]
    assert denoise > 1.1 * {p.phase: p.activation_bytes for p in tiny.phases}["denoise"]   # wider UNet blocks
    assert wide.peak_bytes > tiny.peak_bytes and wide.host_bytes > tiny.host_bytes


# ---------------------------------------------------------------- the app and the CLI
def test_the_advisor_of_a_tiny_service_gives_tiny_figures_and_the_full_size_one_apart(tiny_service):
    values = {"prompt": "a boat", "resolution": 512, "num_frames": 16, "num_inference_steps": 30}
    estimate = tiny_service.estimate(values, (512, 512))
    assert estimate["model"]["kind"] == "tiny" and estimate["model"]["profile"] == profiles.COMMITTED
    full = estimate["full_size"]
    assert estimate["fits"] and estimate["peak_gib"] < FAR_BELOW * full["peak_gib"]
    assert "full-size I2VGen-XL would need" in estimate["text"]
    from i2v.ui.format import estimate_markdown

    panel = estimate_markdown(estimate, "en")
    assert f"{full['peak_gib']:.1f} GiB" in panel and "tiny" in panel
    statuses = tiny_service.presets_status((512, 512))
    assert all(p["status"] != "does_not_fit" for p in statuses["presets"])


def cli(args, tmp_path, timeout_s):
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"),
               HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))      # no weights, no network: auto is tiny
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)      # our own process group, by its PID
            proc.wait()
    return proc.returncode, out, err


def test_estimate_tiny_is_far_below_and_reports_the_full_size_figure(tmp_path):
    args = ["estimate", "--resolution", "512", "--frames", "16", "--json", "--device-memory", "24",
            "--host-memory", "64"]
    code, out, err = cli([*args, "--model", "tiny"], tmp_path, 300)
    assert code == 0, err[-2000:]
    tiny = json.loads(out)
    code, out, err = cli(args, tmp_path, 300)
    assert code == 0, err[-2000:]
    full = json.loads(out)
    assert tiny["model"]["kind"] == "tiny" and full["model"]["kind"] == "full" and "full_size" not in full
    assert tiny["peak_gib"] < FAR_BELOW * full["peak_gib"]
    assert tiny["full_size"]["peak_gib"] == full["peak_gib"] and tiny["full_size"]["plan"] == full["plan"]
    # a repo whose configs are not on disk (no cache, no network): the full-size figures, and it says so
    code, out, err = cli([*args, "--model", "someone/other-i2vgen-xl"], tmp_path, 300)
    assert code == 0, err[-2000:]
    other = json.loads(out)
    assert other["peak_gib"] == full["peak_gib"] and other["model"]["full_size"] and "full_size" not in other
    assert "full-size" in other["model"]["note"] and "note:" in err


@pytest.mark.parametrize("model", ["auto", "tiny"])
def test_generate_the_readme_example_runs_on_the_model_that_loads(tmp_path, sample_image, model):
    """README: `python main.py generate --image in.png --prompt "a boat drifting"` (default resolution and
    frames; 2 steps instead of 50, which changes the time, not the memory), here with no weights and no network:
    auto falls back to the tiny model, which is fitted by its own figures and runs as asked."""
    (tmp_path / "in.png").write_bytes(Path(sample_image).read_bytes())
    args = ["generate", "--image", "in.png", "--prompt", "a boat drifting", "--steps", "2", "--json"]
    code, out, err = cli(args + ([] if model == "auto" else ["--model", model]), tmp_path, 900)
    assert code == 0 and "device_cannot_run" not in out + err, (out[-1000:], err[-2000:])
    from i2v import video

    result = json.loads(out)
    info = video.probe_video(result["video_path"])
    assert info.frames == 16 and min(info.width, info.height) == 512
    assert result["model"] == "tiny" and result["adjustments"] == []


def test_before_a_job_on_a_gpu_the_exact_shape_is_traced_once(tmp_path, monkeypatch):
    """The clamp on a (simulated) GPU traces the chunked peaks at the request's exact shape in a subprocess
    (the full-size UNet on meta at a small, off-grid shape), keeps them, and predicts chunked plans from them;
    a second job at that shape traces nothing."""
    from i2v.advisor import Advisor
    from i2v.core.memory import chunk_budgets, predict
    from i2v.core.request import build_request

    monkeypatch.setenv("I2V_SIMULATED_DEVICE", "cuda,8,7.3,32")
    monkeypatch.setenv("I2V_LOGS", str(tmp_path / "logs"))
    advisor = Advisor(model_source=profiles.full_size_source)
    advisor.exact_trace_timeout_s = 900            # a bound for a loaded CI machine, not a wait
    request = build_request((336, 200), prompt="a boat", resolution=256, num_frames=5)
    assert advisor.trace_exact_shape(request) is True
    assert profiles.chunk_points_file(profiles.full_size_source()).is_file()
    model, _ = advisor.memory_model("fp16")
    budgets = chunk_budgets(model, "fp16")
    shape = (request.width, request.height, request.num_frames)
    assert all(("fp16", f"denoise_cfg_chunk{b}{s}", *shape) in model.exact_points
               for b in budgets for s in ("", "_split"))
    chunked = request.replace(chunk_tokens=budgets[-1])
    table = f"denoise_cfg_chunk{budgets[-1]}"
    traced = model.exact_points[("fp16", table, *shape)]
    figure = next(p for p in predict(model, chunked, dtype="fp16").phases if p.phase == "denoise")
    assert figure.activation_bytes == int(traced * model.constants.activation_overhead)
    assert advisor.trace_exact_shape(request) is False          # kept: nothing traced again
