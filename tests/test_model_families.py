"""The model-family seam: the registry reads what the user typed, each family's rules shape requests, the ladder
keeps a family's frame and size rules, and a tiny Wan 2.2 run through `main.py generate` equals a bare diffusers
call with the same seed and settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from i2v.core.errors import I2VError
from i2v.core.family import DEFAULT_RULES
from i2v.core.request import RequestError, build_request
from i2v.models import DEFAULT_FAMILY, FAMILIES, UnknownFamily, by_name, family_of_folder, interpret, tiny_choices
from tests.family_tools import bare_video, compare_videos, generate_with_cli

ROOT = Path(__file__).resolve().parents[1]
WAN = by_name("wan2.2-ti2v-5b")


# ---------------------------------------------------------------- the registry
@pytest.mark.parametrize("spec, family, kind, target", [
    ("auto", "i2vgen-xl", "auto", "ali-vilab/i2vgen-xl"),
    ("tiny", "i2vgen-xl", "tiny", "tiny"),
    ("i2vgen-xl", "i2vgen-xl", "repo", "ali-vilab/i2vgen-xl"),
    ("wan2.2-ti2v-5b", "wan2.2-ti2v-5b", "repo", "Wan-AI/Wan2.2-TI2V-5B-Diffusers"),
    ("Wan-AI/Wan2.2-TI2V-5B-Diffusers", "wan2.2-ti2v-5b", "repo", "Wan-AI/Wan2.2-TI2V-5B-Diffusers"),
    ("tiny-wan2.2-ti2v-5b", "wan2.2-ti2v-5b", "tiny", "tiny-wan2.2-ti2v-5b"),
    ("someone/another-i2vgen-finetune", "i2vgen-xl", "repo", "someone/another-i2vgen-finetune"),
])
def test_every_spelling_of_a_model_names_its_family(spec, family, kind, target):
    meaning = interpret(spec)
    assert (meaning.family.name, meaning.kind, meaning.target) == (family, kind, target)


def test_names_are_unique_across_families_and_tiny_is_still_i2vgen():
    spellings = [name for family in FAMILIES for name in (*family.names(), family.tiny_alias)]
    assert len(spellings) == len(set(spellings)) or all(
        by_name(name) is family for family in FAMILIES for name in family.names())
    assert tiny_choices()[0] == "tiny" and by_name("tiny") is DEFAULT_FAMILY
    assert set(tiny_choices()) == {"tiny", *(f.tiny_alias for f in FAMILIES)} >= {"tiny", "tiny-wan2.2-ti2v-5b"}


def test_a_folder_is_recognised_by_its_model_index(tmp_path):
    def folder(name: str, index: dict) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "model_index.json").write_text(json.dumps(index))
        return path

    wan = folder("wan", {"_class_name": "WanPipeline", "expand_timesteps": True})
    wan21 = folder("wan21", {"_class_name": "WanImageToVideoPipeline", "expand_timesteps": False})
    i2vgen = folder("i2vgen", {"_class_name": "I2VGenXLPipeline"})
    other = folder("svd", {"_class_name": "StableVideoDiffusionPipeline"})
    assert family_of_folder(wan) is WAN and interpret(str(wan)).family is WAN
    assert family_of_folder(i2vgen) is DEFAULT_FAMILY
    for unknown in (wan21, other):            # Wan 2.1 (no expand_timesteps) is another model: not taken for 2.2
        with pytest.raises(UnknownFamily, match="I2VGen-XL, Wan 2.2 TI2V-5B"):
            family_of_folder(unknown)
    from i2v.pipeline import ModelUnavailable, choose_model

    assert choose_model(str(wan)).family == WAN.name
    with pytest.raises(ModelUnavailable, match="StableVideoDiffusionPipeline"):
        choose_model(str(other))


def test_each_family_has_its_configs_profile_presets_and_runtime_on_disk():
    for family in FAMILIES:
        configs = family.full_size_configs()
        assert set(configs) == set(family.components)
        assert family.profile_path().is_file(), family.profile_path()
        profile = json.loads(family.profile_path().read_text())
        dtypes = set(profile["dtypes"])
        assert {family.cuda_dtype, "fp32"} <= dtypes, (family.name, dtypes)
        from i2v.configs import load_presets

        assert load_presets(family=family)
        from i2v import profiles

        tiny = profiles.profile_for(profiles.source_for("tiny", family.tiny_alias), "fp32")
        assert tiny.origin == profiles.COMMITTED and tiny.info()["family"] == family.name   # never traced here
        runtime = family.load_runtime()
        for name in ("build_pipeline", "phase_modules", "denoise_calls_per_step", "apply_exact_parts",
                     "remove_exact_parts", "call_kwargs", "decode", "tiny_configs"):
            assert callable(getattr(runtime, name)), (family.name, name)
        assert runtime.DENOISER == family.denoiser


# ---------------------------------------------------------------- rules
def test_wan_rules_give_its_defaults_size_multiple_and_frame_rule():
    request = build_request((1280, 720), WAN.rules, prompt="a boat")
    assert (request.num_frames, request.fps, request.guidance_scale, request.resolution) == (121, 24, 5.0, 704)
    assert request.width % 32 == 0 and request.height % 32 == 0 and request.height == 704
    with pytest.raises(RequestError) as bad:
        build_request((1280, 720), WAN.rules, prompt="a boat", num_frames=8)
    assert bad.value.key == "field_frames_rule" and bad.value.params["field"] == "num_frames"
    assert "5k" not in str(bad.value) and "4k+1" in str(bad.value) and "5 or 9" in str(bad.value)
    with pytest.raises(RequestError) as bad:
        build_request((1280, 720), WAN.rules, prompt="a boat", resolution=512)     # not one of Wan's sizes
    assert bad.value.params["field"] == "resolution"


def test_i2vgen_rules_are_unchanged():
    request = build_request((640, 480), prompt="a dog")
    assert (request.num_frames, request.fps, request.guidance_scale, request.resolution) == (16, 16, 9.0, 512)
    assert build_request((640, 480), DEFAULT_RULES, prompt="a dog", num_frames=8).num_frames == 8
    assert DEFAULT_RULES.check_frames(7) is None and isinstance(WAN.rules.check_frames(7), I2VError)


def test_the_ladder_keeps_the_family_frame_and_size_rules():
    from i2v.core.fallback import fewer_frames, settings_notch, with_resolution

    request = build_request((1280, 720), WAN.rules, prompt="a boat")
    seen = []
    step = settings_notch(request, WAN.rules)
    while step is not None:
        seen.append(step[0])
        step = settings_notch(step[0], WAN.rules)
    assert seen and all((r.num_frames - 1) % 4 == 0 and r.width % 32 == 0 and r.height % 32 == 0 for r in seen)
    assert {r.resolution for r in seen} <= {256, 480, 704} and seen[-1].num_frames == 5
    assert fewer_frames(16, 8) == 8                               # I2VGen-XL's steps as before
    assert with_resolution(request, 480, WAN.rules).width % 32 == 0


# ---------------------------------------------------------------- a tiny Wan run through the app
def test_tiny_wan_through_the_cli_equals_a_bare_diffusers_call(tmp_path, sample_image):
    """`main.py generate --model tiny-wan2.2-ti2v-5b`: a playable MP4 with 4k+1 frames and the family in the
    sidecar, whose frames equal the bare WanImageToVideoPipeline's with the same seed, both written by the same
    encoder (PSNR at the H.264 floor: equal inputs give equal videos)."""
    import torch

    from i2v.video import probe_video

    result, sidecar = generate_with_cli(tmp_path, sample_image, "tiny-wan2.2-ti2v-5b", frames=9)
    assert sidecar["family"] == WAN.name and sidecar["repo"] == WAN.repo_id
    ran = sidecar["parameters"]
    info = probe_video(Path(result["video_path"]))
    assert info.frames == 9 and (info.width, info.height) == (ran["width"], ran["height"])

    pipe = WAN.load_runtime().build_pipeline("tiny", "tiny-wan2.2-ti2v-5b", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    bare = bare_video(pipe, sample_image, ran, tmp_path / "bare.mp4")
    a, b, psnr = compare_videos(result["video_path"], bare)
    assert a.shape == b.shape and psnr > 45, psnr


# ---------------------------------------------------------------- Wan 2.2's full-size predictions
def wan_model():
    from i2v import configs
    from i2v.core.memory import for_device

    return for_device(configs.memory_model_for(configs.read_json(WAN.profile_path()), calibrated=False), "cuda")


def test_wan_decode_is_predicted_per_frame_size_not_per_frames_times_pixels():
    """Wan's VAE decodes frame by frame: its traced peak is set by one frame's size. At every traced point the
    prediction is the trace (x the allocator overhead) plus the decoded video, so a 1280x704x17 decode does not
    lift an 832x480x81 one (same frames x pixels order)."""
    from i2v.core.memory import decoded_video_bytes, phase_activations

    model = wan_model()
    traced = model.tables["bf16"]
    profile = json.loads(WAN.profile_path().read_text())
    for point in profile["dtypes"]["bf16"]["phases"]["decode"]:
        request = build_request((point["width"], point["height"]), WAN.rules, prompt="p",
                                resolution=min(point["width"], point["height"]) if min(
                                    point["width"], point["height"]) in (256, 480, 704) else 480,
                                num_frames=point["frames"])
        request = request.replace(width=point["width"], height=point["height"])
        got = phase_activations(model, request, "bf16")["decode"]
        assert got == pytest.approx(point["bytes"] + decoded_video_bytes(request, "bf16", model), rel=1e-9)
    assert traced.surfaces["decode"]((832 * 480), 81) < traced.surfaces["decode"]((1280 * 704), 17)


@pytest.mark.parametrize("width, height, frames, card, host", [(832, 480, 81, 8, 32), (480, 480, 49, 6, 32)])
def test_wan_fits_small_cards_exactly_with_its_settings(width, height, frames, card, host):
    """The issue's small-card case: 832x480x81 on an 8 GiB card with 32 GiB of RAM runs as asked with an exact
    plan (no fp8, no VAE tiling); host RAM counted (the UMT5-XXL encoder alone is ~11 GB in bf16)."""
    from i2v.core.clamp import fit
    from i2v.core.units import GIB

    request = build_request((width, height), WAN.rules, prompt="p", resolution=min(width, height),
                            num_frames=frames).replace(width=width, height=height)
    result = fit(request, int(card * GIB) - int(0.5 * GIB), wan_model(), "bf16", host_bytes=int(host * GIB),
                 rules=WAN.rules)
    assert result.adjustments == () and not result.request.plan.lossy
    assert result.prediction.host_bytes > 10 * GIB and result.prediction.host_bytes <= host * GIB


def test_the_text_encoder_moves_to_the_cpu_only_when_that_is_what_fits():
    """Running UMT5-XXL on the CPU is exact but costs about a minute per job: the ladder keeps it on a card
    that holds it and moves it where nothing else fits."""
    from i2v.core.clamp import fit
    from i2v.core.memory import estimate_time, text_encode_cpu_seconds
    from i2v.core.units import GIB

    model = wan_model()
    request = build_request((1280, 720), WAN.rules, prompt="p")
    big = fit(request, int(22.5 * GIB), model, "bf16", host_bytes=64 * GIB, rules=WAN.rules)
    assert big.adjustments == () and big.request.text_encoder_cpu is False
    on_gpu = estimate_time(model, big.request, 80.0, "bf16")
    on_cpu = estimate_time(model, big.request.replace(text_encoder_cpu=True), 80.0, "bf16")
    # the CPU run replaces the encoder's copy to the card (model offload moves it once per job)
    assert on_cpu.per_job_s - on_gpu.per_job_s > 0.9 * text_encode_cpu_seconds(model, "bf16")
    assert 10 < text_encode_cpu_seconds(model, "bf16") < 600


def test_a_model_without_weights_here_is_refused_as_the_model_not_the_device(tmp_path, sample_image):
    """`--model wan2.2-ti2v-5b` with no weights and no Hub: the answer names the model and how to get it, not a
    memory verdict of a model that cannot load."""
    env = dict(os.environ, I2V_OUTPUTS=str(tmp_path / "outputs"), I2V_LOGS=str(tmp_path / "logs"),
               HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "generate", "--image", str(sample_image),
                           "--model", "wan2.2-ti2v-5b", "--prompt", "a boat", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    error = json.loads(done.stdout)["error"]
    assert done.returncode == 2 and error["key"] == "model_unavailable", done.stdout
    assert "huggingface-cli download Wan-AI/Wan2.2-TI2V-5B-Diffusers" in error["message"]
    assert "Traceback" not in done.stderr and not (tmp_path / "outputs").exists() or not any(
        (tmp_path / "outputs").iterdir())


def test_the_page_says_the_host_ram_and_names_the_running_family():
    """The estimate panel on a GPU says how much RAM the plan keeps (offloaded weights, a text encoder on the
    CPU) and, beside a tiny model's figures, what that family's full-size model would need — in both languages."""
    from i2v.ui.format import estimate_markdown, plan_text

    estimate = {"peak_gib": 7.1, "available_gib": 7.3, "label": "predicted", "fits": True, "offload": "sequential",
                "plan": {"offload": "sequential", "text_encoder_cpu": True}, "adjustments": [], "host_ram_gib": 23.7,
                "device": "cuda", "model": {"name": "tiny-wan2.2-ti2v-5b", "family_title": WAN.title},
                "full_size": {"peak_gib": 7.1, "fits": True}}
    english, chinese = estimate_markdown(estimate, "en"), estimate_markdown(estimate, "zh")
    assert "23.7 GiB" in english and "23.7 GiB" in chinese and "I2VGen-XL" not in english + chinese
    assert "full-size Wan 2.2 TI2V-5B" in english and "Wan 2.2 TI2V-5B" in chinese
    assert "text encoder run on the CPU" in plan_text(estimate["plan"], "en")
    assert "host RAM" not in estimate_markdown({**estimate, "device": "cpu"}, "en")   # RAM is the budget there


@pytest.mark.parametrize("width, height, frames, card, host", [(1280, 704, 121, 12, 64), (832, 480, 81, 8, 32)])
def test_estimate_wan_at_its_own_sizes_on_small_cards(capsys, monkeypatch, width, height, frames, card, host):
    """The issue's acceptance commands: `main.py estimate --model wan2.2-ti2v-5b ... --json` fits as asked with
    an exact plan, labelled a prediction, with the composition of every phase."""
    from i2v.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["estimate", "--model", "wan2.2-ti2v-5b", "--width", str(width), "--height", str(height),
                 "--frames", str(frames), "--device-memory", str(card), "--host-memory", str(host), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["fits"] and report["adjustments"] == []
    assert report["plan"]["weights_dtype"] != "fp8" and not report["plan"]["vae_tiling"]
    assert (report["request"]["width"], report["request"]["height"], report["request"]["num_frames"]) == (
        width, height, frames)
    assert report["label"] == "predicted" and report["model"]["family"] == WAN.name
    assert report["peak_gib"] <= card and report["host_ram_gib"] <= host
    phases = {p["phase"]: p for p in report["phases"]}
    assert set(phases) == {"text_encode", "image_encode", "vae_encode", "denoise", "decode"}
    assert all({"weights_bytes", "activation_bytes", "context_bytes", "total_gib"} <= set(p) for p in phases.values())
    assert phases["image_encode"]["activation_bytes"] == 0          # Wan has no image encoder
