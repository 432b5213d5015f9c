"""The exact chunked UNet and the CFG split, at the UNet level: equal to the plain forward, really chunked,
reversible. Tiny random weights with every layer active (diffusers zero-initialises the last conv of each
temporal conv layer, which would hide mistakes in the stages before it)."""
import pytest
import torch

from i2v.chunking import (
    ChunkingUnsupported,
    apply_unet_plan,
    chunk_count,
    frames_per_chunk,
    rows_per_band,
    unet_plan,
)

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def unet():
    from i2v.tiny_model import build_tiny_components

    model = build_tiny_components()["unet"].eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model


def inputs(unet, batch, frames, height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    dim = unet.config.cross_attention_dim
    return dict(
        sample=torch.randn(batch, 4, frames, height, width, generator=generator),
        timestep=torch.tensor(500),
        fps=torch.tensor([8.0] * batch),
        image_latents=torch.randn(batch, 4, frames, height, width, generator=generator),
        image_embeddings=torch.randn(batch, dim, generator=generator),
        encoder_hidden_states=torch.randn(batch, 11, dim, generator=generator),
        return_dict=False,
    )


def forward(unet, kwargs):
    with torch.no_grad():
        return unet(**kwargs)[0]


# (batch, frames, height, width) x budgets: frame counts and grids that the budgets do not divide evenly
SHAPES = ((2, 5, 12, 10), (1, 3, 8, 16), (2, 7, 16, 8))
BUDGETS = (1, 13, 40, 97)


@pytest.mark.parametrize("shape", SHAPES)
def test_chunked_and_split_forward_equals_plain(unet, shape):
    kwargs = inputs(unet, *shape)
    plain = forward(unet, kwargs)
    try:
        for cfg_split in (False, True):
            for budget in (0,) + BUDGETS:
                if not cfg_split and not budget:
                    continue
                apply_unet_plan(unet, cfg_split, budget)
                assert unet_plan(unet) == (cfg_split, budget)
                out = forward(unet, kwargs)
                assert out.shape == plain.shape
                difference = (out - plain).abs().max().item()
                assert difference <= TOLERANCE * max(1.0, plain.abs().max().item()), (cfg_split, budget, difference)
                if budget and budget < shape[2] * shape[3]:
                    assert chunk_count(unet) > 0     # it really ran in pieces
    finally:
        apply_unet_plan(unet, False, 0)


def test_cfg_split_equals_batched_and_keeps_one_hook_call_per_step(unet):
    calls = []
    handle = unet.register_forward_pre_hook(lambda *_: calls.append(1))
    kwargs = inputs(unet, 2, 4, 8, 8)
    try:
        plain = forward(unet, kwargs)
        apply_unet_plan(unet, True, 0)
        split = forward(unet, kwargs)
        # batch 1 may take other CPU kernels than batch 2: equal to float rounding, not always bitwise
        assert (split - plain).abs().max().item() <= 1e-5 * max(1.0, plain.abs().max().item())
        assert len(calls) == 2          # one per forward call, split or not
    finally:
        handle.remove()
        apply_unet_plan(unet, False, 0)


def test_plan_comes_off_completely(unet):
    kwargs = inputs(unet, 2, 3, 8, 8)
    plain = forward(unet, kwargs)
    before = {name: tensor.clone() for name, tensor in unet.state_dict().items()}
    apply_unet_plan(unet, True, 5)
    apply_unet_plan(unet, False, 7)     # change without removing first
    apply_unet_plan(unet, False, 0)
    assert unet_plan(unet) == (False, 0)
    assert all("forward" not in module.__dict__ for module in unet.modules())
    assert all(torch.equal(before[name], tensor) for name, tensor in unet.state_dict().items())
    assert torch.equal(forward(unet, kwargs), plain)


def test_earlier_instance_forward_is_kept_and_restored(unet):
    """Diffusers' hooks (layerwise casting, group offload) replace forward on instances: the wrappers must call
    them and put them back."""
    block = unet.down_blocks[0].resnets[0]
    seen = []
    original = type(block).forward.__get__(block)

    def hooked(*args, **kwargs):
        seen.append(1)
        return original(*args, **kwargs)

    block.forward = hooked
    try:
        apply_unet_plan(unet, False, 1)
        forward(unet, inputs(unet, 1, 2, 8, 8))
        assert seen
        apply_unet_plan(unet, False, 0)
        assert block.__dict__["forward"] is hooked
    finally:
        block.__dict__.pop("forward", None)


def test_slices_follow_the_budget():
    assert frames_per_chunk(64, 64, 16384) == 4 and frames_per_chunk(128, 128, 4096) == 1
    assert rows_per_band(32, 128, 16384) == 4 and rows_per_band(32, 128, 100) == 1


def test_unsupported_diffusers_is_refused(unet, monkeypatch):
    import diffusers

    monkeypatch.setattr(diffusers, "__version__", "0.99.0")
    with pytest.raises(ChunkingUnsupported, match="0.99.0"):
        apply_unet_plan(unet, True, 64)
    assert unet_plan(unet) == (False, 0)
