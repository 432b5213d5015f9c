"""LTX-Video, the third family, through the seam: the registry and rules (8k+1 frames, x32, 25 fps), the tiny
model (fp32, CPU) through the runtime equals a bare diffusers call, every exact part (CFG split, token chunking,
the text encoder on the CPU) equals the plain run within 1e-4, the CLI's MP4 equals a bare call's (PSNR at the
H.264 floor), and the issue's estimate on a 6 GiB card fits with an exact plan (a prediction)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from i2v.core.errors import I2VError
from i2v.core.request import build_request
from i2v.models import by_name, interpret, tiny_choices
from tests import family_tools
from tests.family_tools import (bare_video, compare_videos, counting_calls, generate_with_cli, gradient_image,
                                pipe_fixtures, seeded_generator, timings_fixture)

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from i2v.models import ltx_parts, ltx_runtime  # noqa: E402

LTX = by_name("ltx-video")
SEED = 7
WIDTH, HEIGHT, FRAMES, STEPS = 256, 192, 17, 2      # 3 latent frames x 6 x 8 = 144 tokens
TOKENS = 3 * 6 * 8
EXACT_TOLERANCE = 1e-4
TIMINGS: dict[str, float] = {}
report_timings = timings_fixture(TIMINGS)


def request(**changes):
    from i2v.core.request import GenerationRequest

    base = GenerationRequest(prompt="a red fox runs through snow", negative_prompt="blurry", width=WIDTH,
                             height=HEIGHT, num_frames=FRAMES, fps=25, num_inference_steps=STEPS,
                             guidance_scale=3.0, seed=SEED)
    return base.replace(**changes)


def image():
    return gradient_image(WIDTH, HEIGHT)


def app_latents(pipe, req):
    return family_tools.app_latents(ltx_runtime, pipe, req, image())


pipe, baseline = pipe_fixtures(ltx_runtime, TIMINGS, lambda pipe: app_latents(pipe, request()))


# ---------------------------------------------------------------- registry and rules
def test_every_spelling_names_ltx_and_its_tiny_variant_is_listed():
    for spec, kind in (("ltx-video", "repo"), ("ltx", "repo"), ("Lightricks/LTX-Video", "repo"),
                       ("tiny-ltx-video", "tiny")):
        assert interpret(spec).family is LTX and interpret(spec).kind == kind
    assert "tiny-ltx-video" in tiny_choices()
    assert LTX.recognises({"_class_name": "LTXPipeline"}) and not LTX.recognises({"_class_name": "WanPipeline"})


def test_ltx_rules_frames_8k_plus_1_sizes_x32_25_fps():
    req = build_request((1280, 720), LTX.rules, prompt="a boat")
    assert (req.num_frames, req.fps, req.guidance_scale) == (121, 25, 3.0)
    assert req.width % 32 == 0 and req.height % 32 == 0 and min(req.width, req.height) == 512
    assert LTX.rules.check_frames(121) is None and isinstance(LTX.rules.check_frames(120), I2VError)
    assert LTX.rules.nearest_frames(100) == 97
    assert "cfg_split" in LTX.rules.plan_parts and "decode_chunk" not in LTX.rules.plan_parts


# ---------------------------------------------------------------- the runtime on the tiny model
def test_tiny_model_has_the_real_classes_and_latent_geometry(pipe):
    from diffusers import AutoencoderKLLTXVideo, LTXImageToVideoPipeline, LTXVideoTransformer3DModel
    from transformers import T5EncoderModel

    assert type(pipe) is LTXImageToVideoPipeline and isinstance(pipe.transformer, LTXVideoTransformer3DModel)
    assert isinstance(pipe.vae, AutoencoderKLLTXVideo) and isinstance(pipe.text_encoder, T5EncoderModel)
    assert (pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio) == (32, 8)
    assert pipe.vae.config.latent_channels == pipe.transformer.config.in_channels == 128
    assert pipe.vae.config.timestep_conditioning
    assert pipe.transformer.config.caption_channels == pipe.text_encoder.config.d_model


def test_app_path_equals_bare_diffusers_and_hooks_fire(pipe):
    req = request()
    with counting_calls(ltx_runtime.phase_modules(pipe)) as fired:
        with torch.no_grad():
            bare = pipe(image=image(), prompt=req.prompt, negative_prompt=req.negative_prompt, height=HEIGHT,
                        width=WIDTH, num_frames=FRAMES, frame_rate=25, num_inference_steps=STEPS,
                        guidance_scale=req.guidance_scale, generator=seeded_generator(SEED), output_type="np").frames[0]
        bare_fired = dict(fired)
        fired.clear()
        started = time.perf_counter()
        events = []
        frames = ltx_runtime.decode(pipe, app_latents(pipe, req), req, listener=lambda *e: events.append(e))
        TIMINGS["app run with decode (s)"] = time.perf_counter() - started
    assert bare_fired == fired == {"text_encode": 2, "vae_encode": 1, "denoise": STEPS, "decode": 1}
    assert events == [("decode", 1, 1)]
    assert frames.dtype == np.uint8 and frames.shape == (FRAMES, HEIGHT, WIDTH, 3) and frames.std() > 0
    assert int(np.abs(frames.astype(int) - (bare * 255).round().astype(int)).max()) <= 1


def test_the_frame_rate_conditions_the_model(pipe, baseline):
    assert not torch.equal(app_latents(pipe, request(fps=12)), baseline)
    assert torch.equal(app_latents(pipe, request()), baseline)


@pytest.mark.parametrize("cfg_split,chunk_tokens,text_encoder_cpu", [
    (True, 0, False), (False, TOKENS, False), (False, 50, False), (False, 7, False), (False, 0, True),
    (True, 50, True),
])
def test_exact_parts_match_the_plain_run(pipe, baseline, cfg_split, chunk_tokens, text_encoder_cpu):
    ltx_runtime.apply_exact_parts(pipe, request(cfg_split=cfg_split, chunk_tokens=chunk_tokens,
                                                text_encoder_cpu=text_encoder_cpu))
    try:
        assert ltx_parts.cfg_split(pipe.transformer) == cfg_split
        assert ltx_parts.token_chunking(pipe.transformer) == chunk_tokens
        assert ltx_runtime.text_encoder_on_cpu(pipe) == text_encoder_cpu
        latents = app_latents(pipe, request())
        chunked = ltx_parts.chunked_calls(pipe.transformer)
    finally:
        ltx_runtime.remove_exact_parts(pipe)
    # per step and block: the feed-forward and the cross-attention (batch 2, or twice batch 1 when split)
    per_step = 2 * len(pipe.transformer.transformer_blocks) * (2 if cfg_split else 1)
    assert chunked == (0 if chunk_tokens in (0, TOKENS) else STEPS * per_step)
    difference = (latents - baseline).abs().max().item()
    TIMINGS[f"max |diff| split={cfg_split} chunk={chunk_tokens} te_cpu={text_encoder_cpu}"] = difference
    assert difference <= EXACT_TOLERANCE


def test_cfg_split_does_not_apply_without_guidance(pipe):
    ltx_parts.set_cfg_split(pipe.transformer, True)
    try:
        app_latents(pipe, request(guidance_scale=1.0))
        assert pipe.transformer._i2v_cfg_split.chunked_calls == 0      # batch 1: nothing to split
    finally:
        ltx_parts.set_cfg_split(pipe.transformer, False)
    assert ltx_runtime.denoise_calls_per_step(1.0) == ltx_runtime.denoise_calls_per_step(3.0) == 1


def test_removing_the_parts_restores_the_original_forwards(pipe):
    ltx_runtime.apply_exact_parts(pipe, request(cfg_split=True, chunk_tokens=32, text_encoder_cpu=True))
    ltx_runtime.apply_exact_parts(pipe, request(cfg_split=True, chunk_tokens=16, text_encoder_cpu=True))
    assert ltx_parts.token_chunking(pipe.transformer) == 16
    ltx_runtime.remove_exact_parts(pipe)
    modules = [pipe.transformer, pipe.text_encoder]
    modules += [m for b in pipe.transformer.transformer_blocks for m in (b.ff, b.attn2)]
    assert not any("forward" in m.__dict__ for m in modules)


# ---------------------------------------------------------------- through the app
def test_tiny_ltx_through_the_cli_equals_a_bare_diffusers_call(tmp_path, sample_image, pipe):
    """`main.py generate --model tiny-ltx-video`: a playable MP4 with 8k+1 frames at 25 fps and the family in
    the sidecar, whose frames equal the bare LTXImageToVideoPipeline's written by the same encoder."""
    from i2v.video import probe_video

    started = time.perf_counter()
    result, sidecar = generate_with_cli(tmp_path, sample_image, "tiny-ltx-video", frames=17)
    TIMINGS["cli generate (s)"] = time.perf_counter() - started
    assert sidecar["family"] == LTX.name
    ran = sidecar["parameters"]
    assert ran["fps"] == 25 and ran["width"] % 32 == 0 and ran["height"] % 32 == 0
    info = probe_video(Path(result["video_path"]))
    assert info.frames == 17 and (info.width, info.height) == (ran["width"], ran["height"])

    bare = bare_video(pipe, sample_image, ran, tmp_path / "bare.mp4", frame_rate=ran["fps"])
    a, b, psnr = compare_videos(result["video_path"], bare)
    TIMINGS["cli vs bare PSNR (dB, inf = equal)"] = psnr
    assert a.shape == b.shape and psnr > 45, psnr


def test_estimate_768x512x121_on_6_gib_fits_exactly(capsys, monkeypatch):
    """The issue's acceptance command (a prediction from the committed full-size profile)."""
    from i2v.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["estimate", "--model", "ltx-video", "--width", "768", "--height", "512", "--frames", "121",
                 "--device-memory", "6", "--host-memory", "32", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["fits"] and report["adjustments"] == []
    assert report["plan"]["weights_dtype"] != "fp8" and not report["plan"]["vae_tiling"]
    assert (report["request"]["width"], report["request"]["height"], report["request"]["num_frames"]) == (
        768, 512, 121)
    assert report["label"] == "predicted" and report["model"]["family"] == LTX.name
    assert report["peak_gib"] <= 6 and report["host_ram_gib"] <= 32
    phases = {p["phase"]: p for p in report["phases"]}
    assert phases["image_encode"]["activation_bytes"] == 0          # LTX has no image encoder
    # the banded decode (ltx_vae_decode.py) is what fits: the whole-video decode traced plain was 4.4 GiB
    assert phases["decode"]["activation_bytes"] < 3.5 * 2 ** 30
    TIMINGS["estimate 768x512x121 peak (GiB)"] = report["peak_gib"]


def test_banded_decode_equals_vae_decode_and_comes_off(pipe):
    """The banded norms and resnet blocks (49 frames: several bands with halos) give vae.decode's values, and
    leave no wrapper behind."""
    from i2v.models import ltx_vae_decode

    latents = torch.randn(1, 128, 7, 3, 4, generator=torch.Generator().manual_seed(0))
    timestep = torch.tensor([0.0])
    with torch.no_grad():
        plain = pipe.vae.decode(latents, timestep, return_dict=False)[0]
        banded = ltx_vae_decode.decode(pipe.vae, latents, timestep)
    assert plain.shape == banded.shape == (1, 3, 49, 96, 128)
    assert (plain - banded).abs().max().item() <= EXACT_TOLERANCE
    assert not any("forward" in m.__dict__ for m in pipe.vae.decoder.modules())


def test_tiny_ltx_through_the_service_api_and_the_model_menu(tmp_path, sample_image):
    """What the page's Generate and the API's /generate call (GenerationService over a worker process): the
    model menu lists the tiny LTX, its rules reach the advisor, and a job gives a playable 8k+1-frame MP4 at
    25 fps whose sidecar names the family."""
    from i2v import video
    from i2v.service import GenerationService
    from i2v.worker import WorkerPool, WorkerRunner

    runner = WorkerPool([WorkerRunner("tiny-ltx-video", tmp_path / "logs", outputs_dir=tmp_path / "outputs")])
    service = GenerationService(runner, tmp_path / "outputs", tmp_path / "logs")
    try:
        assert "tiny-ltx-video" in [m["name"] for m in service.models() if m.get("kind") == "tiny"]
        rules = service.advisor.family().rules
        assert rules.name == LTX.name and rules.frames_step == 8 and rules.setting("fps").default == 25
        started = time.perf_counter()
        result = service.generate(str(sample_image), dict(prompt="a boat", resolution=256, num_frames=17,
                                                          num_inference_steps=2, seed=7))
        TIMINGS["service generate incl. worker load (s)"] = time.perf_counter() - started
    finally:
        runner.shutdown()
    info = video.probe_video(result.video_path)
    sidecar = json.loads(result.video_path.with_suffix(".json").read_text())
    assert info.frames == 17 and info.width % 32 == 0 and info.height % 32 == 0
    assert abs(info.fps - 25) < 0.01 and sidecar["family"] == LTX.name


def test_the_family_names_its_tracer_and_its_profiles_are_committed():
    """The seam: i2v.profile traces LTX through the module its record names (Family.trace); the tiny model's
    profiles (by its configs' hash) and the full-size one are committed, each saying its family."""
    from i2v import profiles
    from i2v.models import ltx_trace
    from i2v.profile import family_dtypes

    assert LTX.trace == "i2v.models.ltx_trace" and family_dtypes(LTX.name) == ltx_trace.DTYPES
    tiny_hash = profiles.config_hash(LTX.tiny_configs(), LTX)
    for dtype in ltx_trace.DTYPES:
        kept = json.loads((profiles.committed_dir() / profiles.profile_name(tiny_hash, dtype)).read_text())
        assert kept["family"]["name"] == LTX.name and kept["grid"]["kind"] == "small"
    full = json.loads(LTX.profile_path().read_text())
    assert full["family"]["cfg_split_applies"] and not full["family"]["decode_chunk_applies"]
    assert full["grid"]["kind"] == "full" and {"denoise_cfg_chunk2048", "decode", "decode_tiled"} <= set(
        full["dtypes"]["bf16"]["phases"])
