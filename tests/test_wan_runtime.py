"""The Wan 2.2 TI2V-5B runtime on its tiny random model (fp32, CPU): the app path gives the bare diffusers
frames, the phase hooks fire as the driver expects, and the exact plan parts (token chunking, the text
encoder on the CPU) change the latents by float rounding at most, and come off cleanly."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests import family_tools
from tests.family_tools import counting_calls, gradient_image, pipe_fixtures, seeded_generator, timings_fixture

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from i2v.core.request import GenerationRequest  # noqa: E402
from i2v.models import wan_chunking, wan_runtime  # noqa: E402

SEED = 7
SIZE, FRAMES, STEPS = 256, 9, 2          # 9 frames -> 3 latent frames; 256 px -> 16x16 latents, 192 tokens
TOKENS = 3 * 8 * 8
EXACT_TOLERANCE = 1e-4
TIMINGS: dict[str, float] = {}
report_timings = timings_fixture(TIMINGS)


def request(**changes) -> GenerationRequest:
    base = GenerationRequest(prompt="a red fox runs through snow", negative_prompt="blurry", width=SIZE,
                             height=SIZE, num_frames=FRAMES, fps=24, num_inference_steps=STEPS,
                             guidance_scale=5.0, seed=SEED)
    return base.replace(**changes)


def image(size: int = SIZE):
    return gradient_image(size, size)


def app_latents(pipe, req):
    return family_tools.app_latents(wan_runtime, pipe, req, image(), TIMINGS)


pipe, baseline = pipe_fixtures(wan_runtime, TIMINGS, lambda pipe: app_latents(pipe, request()))


def test_tiny_model_has_the_real_geometry(pipe):
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import UMT5EncoderModel

    assert type(pipe) is WanImageToVideoPipeline and pipe.config.expand_timesteps
    assert isinstance(pipe.transformer, WanTransformer3DModel) and isinstance(pipe.vae, AutoencoderKLWan)
    assert isinstance(pipe.text_encoder, UMT5EncoderModel) and pipe.image_encoder is None
    vae, transformer = pipe.vae.config, pipe.transformer.config
    assert (vae.z_dim, vae.is_residual, vae.patch_size, vae.scale_factor_spatial, vae.scale_factor_temporal) == \
        (48, True, 2, 16, 4)
    assert (transformer.in_channels, transformer.out_channels, tuple(transformer.patch_size)) == (48, 48, (1, 2, 2))
    assert transformer.text_dim == pipe.text_encoder.config.d_model
    scheduler = pipe.scheduler
    assert isinstance(scheduler, UniPCMultistepScheduler)
    assert (scheduler.config.prediction_type, scheduler.config.use_flow_sigmas, scheduler.config.flow_shift) == \
        ("flow_prediction", True, 5.0)
    ids = pipe.tokenizer(["a b"], padding="max_length", max_length=6, return_tensors="pt").input_ids[0].tolist()
    assert ids[-3:] == [1, 0, 0] and 2 not in ids          # eos then pads; plain text has no unknown token
    assert wan_runtime.DENOISER == "transformer" and getattr(pipe, wan_runtime.DENOISER) is pipe.transformer
    # built twice, the same weights (deterministic, offline)
    again = wan_runtime.build_pipeline("tiny", "", torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(pipe.transformer.parameters(), again.transformer.parameters()))


def test_bf16_tiny_keeps_the_fp32_modules_like_from_pretrained():
    tiny = wan_runtime.build_pipeline("tiny", "", torch.bfloat16)
    block = tiny.transformer.blocks[0]
    assert block.attn1.to_q.weight.dtype == torch.bfloat16 and block.scale_shift_table.dtype == torch.float32
    assert tiny.transformer.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert {p.dtype for p in tiny.text_encoder.parameters()} == {torch.bfloat16}


def test_app_path_equals_bare_diffusers_and_hooks_fire(pipe):
    req = request()
    with counting_calls(wan_runtime.phase_modules(pipe)) as fired:
        started = time.perf_counter()
        with torch.no_grad():
            bare = pipe(image=image(), prompt=req.prompt, negative_prompt=req.negative_prompt, height=SIZE,
                        width=SIZE, num_frames=FRAMES, num_inference_steps=STEPS, guidance_scale=req.guidance_scale,
                        generator=seeded_generator(SEED), output_type="np").frames[0]
        TIMINGS["bare run with decode (s)"] = time.perf_counter() - started
        bare_fired = dict(fired)
        fired.clear()
        started = time.perf_counter()
        latents = app_latents(pipe, req)
        events = []
        frames = wan_runtime.decode(pipe, latents, listener=lambda *event: events.append(event))
        TIMINGS["app run with decode (s)"] = time.perf_counter() - started
    expected_calls = {"text_encode": 2, "vae_encode": 1,
                      "denoise": STEPS * wan_runtime.denoise_calls_per_step(req.guidance_scale), "decode": 3}
    assert bare_fired == fired == expected_calls
    assert events == [("decode", i, 3) for i in (1, 2, 3)]
    assert frames.dtype == np.uint8 and frames.shape == (FRAMES, SIZE, SIZE, 3)
    reference = (bare * 255).round().astype(np.int16)
    difference = int(np.abs(frames.astype(np.int16) - reference).max())
    TIMINGS["app vs bare max uint8 difference"] = difference
    assert difference <= 1
    assert frames.std() > 0                     # random weights, but not a constant picture


def test_one_denoise_call_per_step_without_guidance(pipe):
    assert wan_runtime.denoise_calls_per_step(1.0) == 1 and wan_runtime.denoise_calls_per_step(5.0) == 2
    modules = wan_runtime.phase_modules(pipe)
    with counting_calls({name: modules[name] for name in ("text_encode", "denoise")}) as fired:
        app_latents(pipe, request(guidance_scale=1.0))
    assert fired == {"text_encode": 1, "denoise": STEPS}


def test_the_run_is_deterministic_given_the_seed(pipe, baseline):
    assert torch.equal(app_latents(pipe, request()), baseline)
    assert not torch.equal(app_latents(pipe, request(seed=SEED + 1)), baseline)


@pytest.mark.parametrize("chunk_tokens,text_encoder_cpu", [
    (TOKENS, False),          # one chunk: the original forward
    (100, False),             # does not divide 192: chunks of 100 and 92
    (64, False),
    (7, False),               # 28 chunks, the last of 3 tokens
    (0, True),                # the text encoder on the CPU
    (50, True),               # both
])
def test_exact_parts_match_the_plain_run(pipe, baseline, chunk_tokens, text_encoder_cpu):
    started = time.perf_counter()
    wan_runtime.apply_exact_parts(pipe, request(chunk_tokens=chunk_tokens, text_encoder_cpu=text_encoder_cpu))
    try:
        assert wan_chunking.token_chunking(pipe.transformer) == chunk_tokens
        assert wan_runtime.text_encoder_on_cpu(pipe) == text_encoder_cpu
        if text_encoder_cpu:
            assert "forward" in pipe.text_encoder.__dict__
            assert {p.device.type for p in pipe.text_encoder.parameters()} == {"cpu"}
        latents = app_latents(pipe, request())
        chunked = wan_chunking.chunked_calls(pipe.transformer)
    finally:
        wan_runtime.apply_exact_parts(pipe, request())
    expected_chunked = 0 if chunk_tokens in (0, TOKENS) else 4 * len(pipe.transformer.blocks)
    assert chunked == expected_chunked
    difference = (latents - baseline).abs().max().item()
    TIMINGS[f"max |diff| chunk={chunk_tokens} te_cpu={text_encoder_cpu}"] = difference
    TIMINGS[f"time chunk={chunk_tokens} te_cpu={text_encoder_cpu} (s)"] = time.perf_counter() - started
    assert difference <= EXACT_TOLERANCE


def test_removing_the_parts_restores_the_original_forwards(pipe, baseline):
    blocks = list(pipe.transformer.blocks)
    wan_runtime.apply_exact_parts(pipe, request(chunk_tokens=64, text_encoder_cpu=True))
    assert all("forward" in block.__dict__ for block in blocks)
    wan_runtime.apply_exact_parts(pipe, request(chunk_tokens=32, text_encoder_cpu=True))   # replaces the budget
    assert wan_chunking.token_chunking(pipe.transformer) == 32
    wan_runtime.remove_exact_parts(pipe)
    assert wan_chunking.token_chunking(pipe.transformer) == 0 and not wan_runtime.text_encoder_on_cpu(pipe)
    assert not any("forward" in block.__dict__ for block in blocks)
    assert "forward" not in pipe.text_encoder.__dict__
    assert type(pipe.transformer.blocks[0]).forward is pipe.transformer.blocks[0].forward.__func__
    assert torch.equal(app_latents(pipe, request()), baseline)       # bit for bit the plain run again


def test_text_encoder_cpu_under_model_offload_switches_the_hook_device():
    from types import SimpleNamespace

    from accelerate.hooks import CpuOffload, add_hook_to_module
    from transformers import UMT5Config, UMT5EncoderModel

    encoder = UMT5EncoderModel(UMT5Config(**wan_runtime.tiny_configs()["text_encoder"]))
    owner = SimpleNamespace(text_encoder=encoder, device=torch.device("cpu"))
    add_hook_to_module(encoder, CpuOffload(execution_device="meta"))   # stands for the GPU
    offload_forward = encoder.forward
    wan_runtime.set_text_encoder_cpu(owner, True)
    assert encoder._hf_hook.execution_device == torch.device("cpu") and encoder.forward is offload_forward
    wan_runtime.set_text_encoder_cpu(owner, False)
    assert encoder._hf_hook.execution_device == "meta" and not wan_runtime.text_encoder_on_cpu(owner)


def test_text_encoder_cpu_leaves_streamed_weights_alone():
    """Under sequential/group offload (hooks on the leaves) the weights already live on the CPU: no change."""
    from types import SimpleNamespace

    from accelerate.hooks import ModelHook, add_hook_to_module
    from transformers import UMT5Config, UMT5EncoderModel

    encoder = UMT5EncoderModel(UMT5Config(**wan_runtime.tiny_configs()["text_encoder"]))
    owner = SimpleNamespace(text_encoder=encoder, device=torch.device("cpu"))
    add_hook_to_module(encoder.shared, ModelHook())
    before = dict(encoder.__dict__)
    wan_runtime.set_text_encoder_cpu(owner, True)
    assert wan_runtime.text_encoder_on_cpu(owner) and "forward" not in encoder.__dict__
    wan_runtime.set_text_encoder_cpu(owner, False)
    assert not wan_runtime.text_encoder_on_cpu(owner) and encoder.__dict__.keys() == before.keys()


def test_chunked_block_is_exact_with_a_shared_timestep_and_a_batch():
    """The Wan 2.1-style path (one modulation per sample, temb of 3 dims) and a batch of two."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    config = wan_runtime.tiny_configs()["transformer"]
    transformer = WanTransformer3DModel(**{**config, "patch_size": tuple(config["patch_size"])}).eval()
    hidden = torch.randn(2, 48, 2, 8, 12)
    text = torch.randn(2, 5, config["text_dim"])
    timestep = torch.tensor([900.0, 10.0])
    with torch.no_grad():
        plain = transformer(hidden, timestep, text, return_dict=False)[0]
        wan_chunking.apply_token_chunking(transformer, 13)
        chunked = transformer(hidden, timestep, text, return_dict=False)[0]
        wan_chunking.apply_token_chunking(transformer, 0)
    assert (chunked - plain).abs().max().item() <= EXACT_TOLERANCE
    assert not torch.equal(chunked, torch.zeros_like(chunked))


def test_chunking_refuses_what_it_does_not_follow(monkeypatch):
    import diffusers
    from diffusers import WanTransformer3DModel

    config = wan_runtime.tiny_configs()["transformer"]
    transformer = WanTransformer3DModel(**{**config, "patch_size": tuple(config["patch_size"])})
    with pytest.raises(ValueError):
        wan_chunking.apply_token_chunking(transformer, -1)
    transformer.blocks[1].attn1.fuse_projections()
    with pytest.raises(wan_chunking.WanChunkingUnsupported, match="fused"):
        wan_chunking.apply_token_chunking(transformer, 16)
    assert wan_chunking.token_chunking(transformer) == 0 and "forward" not in transformer.blocks[0].__dict__
    transformer.blocks[1].attn1.unfuse_projections()
    monkeypatch.setattr(diffusers, "__version__", "0.43.0")
    with pytest.raises(wan_chunking.WanChunkingUnsupported, match="0.43.0"):
        wan_chunking.apply_token_chunking(transformer, 16)


def _small_latents():
    generator = torch.Generator("cpu").manual_seed(3)
    return torch.randn(1, 48, 2, 8, 8, generator=generator)       # 128x128 px, 5 frames


def test_decode_stops_when_check_raises_and_decodes_again(pipe):
    latents = _small_latents()
    expected = wan_runtime.decode(pipe, latents)
    calls = []

    class Stop(Exception):
        pass

    def check():
        calls.append(1)
        if len(calls) == 2:
            raise Stop

    with pytest.raises(Stop):
        wan_runtime.decode(pipe, latents, check=check)
    assert len(calls) == 2
    assert np.array_equal(wan_runtime.decode(pipe, latents), expected)


def test_vae_tiling_runs_tiles_and_stays_close(pipe):
    """Lossy (the driver applies it): tiles of 64 px with a stride of 48 on a 128 px picture, encode and decode."""
    vae = pipe.vae
    latents = _small_latents()
    pixels = torch.rand(1, 3, 1, 128, 128, generator=torch.Generator("cpu").manual_seed(4)) * 2 - 1
    with torch.no_grad():
        plain_frames = wan_runtime.decode(pipe, latents)
        plain_encoded = vae.encode(pixels).latent_dist.mode()
    vae.enable_tiling(tile_sample_min_height=64, tile_sample_min_width=64, tile_sample_stride_height=48,
                      tile_sample_stride_width=48)
    try:
        events = []
        with torch.no_grad():
            tiled_frames = wan_runtime.decode(pipe, latents, listener=lambda *event: events.append(event))
            tiled_encoded = vae.encode(pixels).latent_dist.mode()
    finally:
        vae.disable_tiling()
    tiles = len(range(0, 8, 3)) ** 2
    assert [event[1:] for event in events] == [(i, 2 * tiles) for i in range(1, 2 * tiles + 1)]
    assert tiled_frames.shape == plain_frames.shape == (5, 128, 128, 3)
    frame_difference = int(np.abs(tiled_frames.astype(np.int16) - plain_frames.astype(np.int16)).max())
    latent_difference = (tiled_encoded - plain_encoded).abs().max().item()
    TIMINGS["VAE tiling max uint8 difference (decode)"] = frame_difference
    TIMINGS["VAE tiling max |diff| (encode latents)"] = latent_difference
    assert frame_difference > 0 and latent_difference > 0       # tiling really happened (it is lossy)


