"""Wan 2.2 TI2V-5B's memory profile: the full-size configs on meta, the committed table re-traced at a few
points, the SDPA keyword fix of the tracer, the family section, chunked vs plain, and the tiny model's
small-grid trace through `python -m i2v.profile`. CPU only (meta device: no weights, no memory)."""
from __future__ import annotations

import json

import pytest

from i2v.core.memory import PHASES, REQUIRED_PHASE_TABLES, Curve, _work
from i2v.paths import configs_dir

FOLDER = configs_dir() / "models" / "wan2.2-ti2v-5b"
PROFILE = FOLDER / "memory_profile.json"


def _configs() -> dict[str, dict]:
    from i2v.models.wan_trace import COMPONENTS

    return {name: json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8")) for name in COMPONENTS}


def _profile() -> dict:
    return json.loads(PROFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def full_bf16():
    from i2v.models.wan_trace import build_meta_model

    return build_meta_model("bf16", _configs())


def _row(points, width, height, frames):
    return next(p for p in points if (p["width"], p["height"], p["frames"]) == (width, height, frames))


def test_full_size_configs_build_with_the_known_sizes(full_bf16):
    """5.0B transformer (3072 wide, 30 layers, 24 heads of 128), UMT5-XXL encoder ~5.7B, the 48-channel VAE."""
    from i2v.profile import weight_figures

    transformer = full_bf16.transformer
    assert transformer.config.num_attention_heads * transformer.config.attention_head_dim == 3072
    figures = {name: weight_figures(module) for name, module in full_bf16.components().items()}
    assert 4.95e9 < figures["transformer"]["params"] < 5.05e9
    assert 5.6e9 < figures["text_encoder"]["params"] < 5.8e9
    assert full_bf16.vae.config.z_dim == transformer.config.in_channels == 48
    committed = _profile()["dtypes"]["bf16"]["weights"]
    for name, entry in figures.items():
        assert entry == {k: v for k, v in committed[name].items() if k != "fp8_bytes"}, name
    # from_pretrained(torch_dtype=bf16) keeps these in float32; the trace must see the same dtypes
    assert full_bf16.transformer.scale_shift_table.dtype.is_floating_point
    assert str(full_bf16.transformer.scale_shift_table.dtype) == "torch.float32"
    assert str(full_bf16.transformer.proj_out.weight.dtype) == "torch.bfloat16"


def test_retrace_matches_the_committed_table(full_bf16):
    """Grid points traced again give exactly the committed bytes (the table is what this code traces)."""
    from i2v.models import wan_trace

    phases = _profile()["dtypes"]["bf16"]["phases"]
    assert wan_trace.trace_denoise(full_bf16, 832, 480, 81)[0] == _row(phases["denoise_cfg"], 832, 480, 81)["bytes"]
    assert wan_trace.trace_vae_encode(full_bf16, 1280, 704) == _row(phases["vae_encode"], 1280, 704, 1)["bytes"]
    assert wan_trace.trace_decode(full_bf16, 480, 480, 17) == _row(phases["decode"], 480, 480, 17)["bytes"]
    assert wan_trace.trace_text_encode(full_bf16) == phases["text_encode"][0]["bytes"]


def test_off_grid_denoise_is_interpolated_within_three_percent(full_bf16):
    from i2v.models import wan_trace

    points = _profile()["dtypes"]["bf16"]["phases"]["denoise_cfg"]
    curve = Curve.from_points([(_work(p), p["bytes"]) for p in points])
    width, height, frames = 640, 576, 65          # between the grid's sizes and frame counts
    traced = wan_trace.trace_denoise(full_bf16, width, height, frames)[0]
    predicted = curve(_work({"width": width, "height": height, "frames": frames}))
    assert abs(predicted - traced) / traced < 0.03, (predicted, traced)


def test_fused_sdpa_accepts_keyword_and_positional_calls():
    """diffusers' attention dispatch passes query/key/value by keyword; I2VGen-XL's processors positionally."""
    import torch
    import torch.nn.functional as F

    from i2v.profile import _fused_sdpa_mode

    q = torch.zeros((1, 2, 7, 8), device="meta")
    k = torch.zeros((1, 2, 5, 8), device="meta")
    v = torch.zeros((1, 2, 5, 4), device="meta")     # value width differs: the output takes it
    with _fused_sdpa_mode():
        by_keyword = F.scaled_dot_product_attention(query=q, key=k, value=v, attn_mask=None, dropout_p=0.0)
        positional = F.scaled_dot_product_attention(q, k, v)
        mixed = F.scaled_dot_product_attention(q, k, value=v)
    assert by_keyword.shape == positional.shape == mixed.shape == (1, 2, 7, 4)


def test_family_section_is_complete():
    from i2v.models.wan_trace import COMPONENTS, decoded_bytes_per_value

    profile = _profile()
    family = profile["family"]
    assert family["name"] == "wan2.2-ti2v-5b" and family["components"] == list(COMPONENTS)
    assert set(family["active_component"]) == set(PHASES) == set(family["model_offload_resident"])
    assert family["active_component"]["image_encode"] is None
    for phase, active in family["active_component"].items():
        resident = family["model_offload_resident"][phase]
        assert set(resident) <= set(COMPONENTS)
        assert active is None or active in resident, phase     # the running component is on the GPU
    assert family["fp8_component"] == "transformer"
    assert "fp8_bytes" in profile["dtypes"]["bf16"]["weights"]["transformer"]
    assert family["decoded_bytes_per_value"] == decoded_bytes_per_value("bf16")
    assert (family["denoise_calls_per_step"], family["cfg_split_applies"], family["decode_chunk_applies"]) == \
        (2, False, False)
    knobs = profile["knobs"]
    assert (knobs["vae_scale_factor"], knobs["temporal_scale_factor"], knobs["size_multiple"]) == (16, 4, 32)
    for dtype in ("bf16", "fp32"):
        assert set(REQUIRED_PHASE_TABLES) <= set(profile["dtypes"][dtype]["phases"])


def test_plain_denoise_tables_are_one_batch_1_call():
    """cond and uncond run as two calls: batched, split and no-CFG tables hold the same figures."""
    for section in _profile()["dtypes"].values():
        phases = section["phases"]
        bytes_of = {name: [p["bytes"] for p in phases[name]]
                    for name in ("denoise_cfg", "denoise_cfg_split", "denoise_nocfg")}
        assert bytes_of["denoise_cfg"] == bytes_of["denoise_cfg_split"] == bytes_of["denoise_nocfg"]
        assert all(p["flops"] > 0 for p in phases["denoise_cfg"])


def test_chunked_tables_are_no_larger_than_the_plain_one():
    """Chunking never costs more than 1% over the plain call, and saves at least 10% once the sequence is two
    budgets long. (Just above one budget the chunked block holds the whole keys/values beside an almost
    whole-sized chunk: traced 0.9% over the plain call in fp32 at 704x704x81 with 8192 tokens a chunk.)"""
    from i2v.models.wan_trace import tokens

    profile = _profile()
    budgets = profile["knobs"]["chunk_budgets"]
    assert budgets, "the committed profile has chunked traces"
    for section in profile["dtypes"].values():
        phases = section["phases"]
        for budget in budgets:
            for row in phases[f"denoise_cfg_chunk{budget}"]:
                plain = _row(phases["denoise_cfg"], row["width"], row["height"], row["frames"])["bytes"]
                assert row["bytes"] <= plain * 1.01, (budget, row)
                if tokens(row["width"], row["height"], row["frames"]) >= 2 * budget:
                    assert row["bytes"] < 0.9 * plain, (budget, row)
            assert phases[f"denoise_cfg_chunk{budget}_split"] == phases[f"denoise_cfg_chunk{budget}"]


TINY = {
    "transformer": dict(patch_size=[1, 2, 2], num_attention_heads=2, attention_head_dim=12, in_channels=48,
                        out_channels=48, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True,
                        qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, added_kv_proj_dim=None,
                        rope_max_seq_len=1024, pos_embed_seq_len=None),
    "vae": dict(base_dim=8, decoder_base_dim=8, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                attn_scales=[], temperal_downsample=[False, True, True], dropout=0.0, latents_mean=[0.0] * 48,
                latents_std=[1.0] * 48, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
                scale_factor_temporal=4, scale_factor_spatial=16),
    "text_encoder": dict(vocab_size=300, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                         num_heads=4, relative_attention_num_buckets=32, relative_attention_max_distance=128,
                         dropout_rate=0.0, layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu",
                         dense_act_fn="gelu_new", is_gated_act=True, scalable_attention=True, pad_token_id=0,
                         eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False),
}


def test_tiny_model_traces_on_the_small_grid_through_the_cli(tmp_path):
    """`python -m i2v.profile` traces a Wan model when the configs name its family; the result loads."""
    import tomllib

    from i2v.core.memory import load_model
    from i2v.profile import main

    source = tmp_path / "configs.json"
    source.write_text(json.dumps({"family": "wan2.2-ti2v-5b", "components": TINY}), encoding="utf-8")
    out = tmp_path / "profile.json"
    assert main(["--configs", str(source), "--out", str(out), "--dtype", "fp32"]) == 0
    profile = json.loads(out.read_text(encoding="utf-8"))
    assert profile["grid"]["kind"] == "small" and profile["family"]["name"] == "wan2.2-ti2v-5b"
    assert profile["model"] == {"family": "wan2.2-ti2v-5b"}
    phases = profile["dtypes"]["fp32"]["phases"]
    assert phases["image_encode"] == [{"width": 0, "height": 0, "frames": 1, "bytes": 0}]
    decode = [p["bytes"] for p in phases["decode"]]
    assert all(b > 0 for b in decode) and decode == sorted(decode)    # grows with frames within a size
    constants = tomllib.loads((configs_dir() / "memory.toml").read_text(encoding="utf-8"))
    assert set(load_model(profile, constants).tables) == {"fp32"}
