"""The sub-chunked Wan VAE decode (i2v/models/wan_vae_decode.py): the same video as vae.decode on the tiny random
VAE (fp32, CPU), its top blocks really run one frame at a time, it refuses what it does not follow, it comes
off cleanly, and its meta-traced peak is lower than the plain decode's."""
from __future__ import annotations

import json
import time

import pytest

from tests.family_tools import timings_fixture

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from i2v.models import wan_runtime, wan_vae_decode  # noqa: E402

EXACT = 1e-5
TIMINGS: dict[str, float] = {}
report_timings = timings_fixture(TIMINGS)


@pytest.fixture(scope="module")
def vae():
    return wan_runtime.build_pipeline("tiny", "", torch.float32).vae


def latents(frames: int, height: int = 4, width: int = 6, seed: int = 0):
    """Non-square: 64x96 pixels."""
    return torch.randn(1, 48, frames, height, width, generator=torch.Generator("cpu").manual_seed(seed + frames))


def conv_out_frames(vae):
    """Records the frame count of every input of the decoder's last conv."""
    seen: list[int] = []
    handle = vae.decoder.conv_out.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[2]))
    return seen, handle


@pytest.mark.parametrize("frames", [1, 2, 3, 5])
def test_equals_vae_decode_and_runs_the_top_blocks_frame_by_frame(vae, frames):
    z = latents(frames)
    seen, handle = conv_out_frames(vae)
    try:
        with torch.no_grad():
            expected = vae.decode(z).sample
        plain_frames = list(seen)
        seen.clear()
        chunked = wan_vae_decode.decode_latents(vae, z)
        chunked_frames = list(seen)
        seen.clear()
        on_host = wan_vae_decode.decode_latents(vae, z, to_host=True)
    finally:
        handle.remove()
    assert expected.shape == (1, 3, 1 + 4 * (frames - 1), 64, 96)
    assert chunked.shape == on_host.shape == expected.shape and on_host.device.type == "cpu"
    difference = max((chunked - expected).abs().max().item(), (on_host - expected).abs().max().item())
    TIMINGS[f"max |diff| at {frames} latent frames"] = difference
    assert difference <= EXACT
    assert ((expected.abs() < 1).float().mean() > 0.9).item()        # not all clamped: the values say something
    assert plain_frames == [1] + [4] * (frames - 1)                 # diffusers: 4 frames at once after the first
    assert chunked_frames == [1] * (1 + 4 * (frames - 1))           # here: one frame at a time
    assert "forward" not in vae.decoder.__dict__                     # the chunked forward came off


def test_slicing_and_hooks_per_latent_frame(vae):
    """A batch of 2 with slicing on: each video decoded alone; a pre-hook on vae.decoder fires per latent frame."""
    z = torch.cat([latents(2, seed=1), latents(2, seed=2)])
    with torch.no_grad():
        expected = vae.decode(z).sample
    calls = []
    handle = vae.decoder.register_forward_pre_hook(lambda *_: calls.append(1))
    vae.enable_slicing()
    try:
        sliced = wan_vae_decode.decode_latents(vae, z, to_host=True)
    finally:
        vae.disable_slicing()
        handle.remove()
    assert len(calls) == 4
    assert (sliced - expected).abs().max().item() <= EXACT


def test_runs_beneath_a_diffusers_hook_on_the_decoder(vae):
    """Group offload puts a diffusers hook on vae.decoder: it still runs once per latent frame, and comes back."""
    from diffusers.hooks import HookRegistry, ModelHook

    class Probe(ModelHook):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def pre_forward(self, module, *args, **kwargs):
            self.calls += 1
            return args, kwargs

    probe = Probe()
    registry = HookRegistry.check_if_exists_or_initialize(vae.decoder)
    registry.register_hook(probe, "probe")
    try:
        wrapped, innermost = vae.decoder.forward, registry._fn_refs[0].forward
        z = latents(3)
        with torch.no_grad():
            expected = vae.decode(z).sample
        assert probe.calls == 3
        chunked = wan_vae_decode.decode_latents(vae, z)
        assert probe.calls == 6 and (chunked - expected).abs().max().item() <= EXACT
        assert vae.decoder.forward is wrapped and registry._fn_refs[0].forward == innermost
    finally:
        registry.remove_hook("probe")
        vae.decoder.__dict__.pop("forward", None)          # diffusers leaves the bound forward on the instance


def test_refuses_another_diffusers_or_structure(vae, monkeypatch):
    import diffusers
    from diffusers.models.autoencoders import autoencoder_kl_wan as wan

    with pytest.raises(wan_vae_decode.WanVaeDecodeUnsupported, match="AutoencoderKLWan"):
        wan_vae_decode.decode_latents(torch.nn.Linear(2, 2), latents(1))

    saved = vae.decoder.up_blocks[3].resnets[0].conv1
    vae.decoder.up_blocks[3].resnets[0].conv1 = wan.WanCausalConv3d(saved.in_channels, saved.out_channels,
                                                                     (5, 3, 3), padding=(2, 1, 1))
    try:
        with pytest.raises(wan_vae_decode.WanVaeDecodeUnsupported, match="temporal kernel"):
            wan_vae_decode.decode_latents(vae, latents(1))
    finally:
        vae.decoder.up_blocks[3].resnets[0].conv1 = saved

    saved_mode = vae.decoder.up_blocks[1].upsampler.mode
    vae.decoder.up_blocks[1].upsampler.mode = "upsample2d"      # the last temporal upsample moves to block 0
    vae.decoder.up_blocks[1].avg_shortcut.factor_t = 1
    try:
        assert wan_vae_decode.check_supported(vae) == 1
        vae.decoder.up_blocks[2].upsampler.mode = "upsample3d"   # now a chunked block would upsample in time
        assert wan_vae_decode.check_supported(vae) == 3
    finally:
        vae.decoder.up_blocks[2].upsampler.mode = "upsample2d"
        vae.decoder.up_blocks[1].upsampler.mode = saved_mode
        vae.decoder.up_blocks[1].avg_shortcut.factor_t = 2
    assert wan_vae_decode.check_supported(vae) == 2

    monkeypatch.setattr(wan, "CACHE_T", 3)
    with pytest.raises(wan_vae_decode.WanVaeDecodeUnsupported, match="caches 3 frames"):
        wan_vae_decode.check_supported(vae)
    monkeypatch.undo()
    monkeypatch.setitem(wan_vae_decode.FOLLOWED_SOURCES, "WanDecoder3d.forward", "0" * 64)
    with pytest.raises(wan_vae_decode.WanVaeDecodeUnsupported, match="WanDecoder3d.forward differs"):
        wan_vae_decode.check_supported(vae)
    monkeypatch.undo()
    monkeypatch.setattr(diffusers, "__version__", "0.43.0")
    with pytest.raises(wan_vae_decode.WanVaeDecodeUnsupported, match="0.43.0"):
        wan_vae_decode.decode_latents(vae, latents(1))
    assert "forward" not in vae.decoder.__dict__


def test_a_stop_inside_the_decoder_takes_the_chunked_forward_off(vae):
    class Stop(Exception):
        pass

    def stop(*_):
        raise Stop

    handle = vae.decoder.conv_out.register_forward_pre_hook(stop)
    try:
        with pytest.raises(Stop):
            wan_vae_decode.decode_latents(vae, latents(2))
    finally:
        handle.remove()
        vae.clear_cache()
    assert "forward" not in vae.decoder.__dict__ and not hasattr(vae.decoder, wan_vae_decode.STATE_ATTRIBUTE)


def meta_vae(config: dict, dtype: str):
    from diffusers import AutoencoderKLWan

    from i2v.models.wan_trace import cast_like_from_pretrained

    with torch.device("meta"):
        vae = AutoencoderKLWan.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    cast_like_from_pretrained(vae, dtype)
    return vae.eval()


def traced_peaks(vae, frames: int, height: int, width: int) -> tuple[int, int, int]:
    """(plain vae.decode, decode_latents keeping the video, what decode_latents(to_host=True) leaves on the device)."""
    from i2v.profile import trace_peak

    z = torch.zeros((1, 48, frames, height, width), dtype=vae.dtype, device="meta")
    return (trace_peak(vae, lambda: vae.decode(z).sample, [z]),
            trace_peak(vae, lambda: wan_vae_decode.decode_latents(vae, z), [z]),
            trace_peak(vae, lambda: wan_vae_decode.decode_on_device(vae, z), [z]))


def test_meta_traced_peak_is_lower_on_the_tiny_vae():
    plain, chunked, on_device = traced_peaks(meta_vae(wan_runtime.tiny_configs()["vae"], "fp32"), 5, 16, 16)
    TIMINGS["tiny 256x256x17 chunked/plain peak"] = chunked / plain
    assert on_device <= chunked < 0.8 * plain


def test_meta_traced_peak_is_lower_on_the_full_size_vae():
    """832x480x17 in bf16: the top blocks run 1 frame instead of 4 (measured 4.04 -> 2.62 GiB)."""
    from i2v.paths import configs_dir

    config = json.loads((configs_dir() / "models" / "wan2.2-ti2v-5b" / "vae.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    plain, chunked, on_device = traced_peaks(meta_vae(config, "bf16"), 5, 30, 52)
    TIMINGS["full-size 832x480x17 trace (s)"] = time.perf_counter() - started
    TIMINGS["full-size 832x480x17 plain peak (GiB)"] = plain / 2 ** 30
    TIMINGS["full-size 832x480x17 on-device peak (GiB)"] = on_device / 2 ** 30
    assert on_device <= chunked < 0.75 * plain


def test_runtime_trace_goes_through_the_chunked_decode(monkeypatch):
    """wan_trace.trace_decode traces decode_on_device (the runtime's code path), tiled or not."""
    from i2v.models import wan_trace

    runs = []
    real = wan_vae_decode.decode_on_device
    monkeypatch.setattr(wan_vae_decode, "decode_on_device", lambda vae, z: runs.append(vae.use_tiling) or real(vae, z))
    model = wan_trace.WanMetaModel("fp32", None, meta_vae(wan_runtime.tiny_configs()["vae"], "fp32"), None)
    assert wan_trace.trace_decode(model, 256, 256, 5) > 0
    assert wan_trace.trace_decode(model, 512, 512, 5, tiling=True) > 0
    assert runs == [False, True] and model.vae.use_tiling is False
