"""The loader's decisions and its report, including the CUDA plan, checked without a GPU on the tiny model."""
import time

import pytest

from i2v import pipeline as pl


@pytest.mark.parametrize("has_xformers, attention", [(True, "xformers"), (False, "sdpa")])
def test_cuda_plan_uses_fp16_and_the_best_attention(has_xformers, attention):
    plan = pl.plan_load("cuda", has_xformers)
    assert (plan.dtype, plan.variant, plan.attention) == ("float16", "fp16", attention)
    assert set(plan.checkpoint_components) == {"unet", "text_encoder", "image_encoder", "vae"}


def test_cpu_plan_uses_float32_and_sdpa():
    plan = pl.plan_load("cpu", has_xformers=True)
    assert (plan.dtype, plan.variant, plan.attention) == ("float32", None, "sdpa")


def test_cuda_report_on_tiny_pipeline_is_honest_about_checkpointing():
    """Run the CUDA plan's optimisation steps on a real (tiny, CPU) pipeline and read the report."""
    from diffusers import I2VGenXLPipeline

    from i2v.tiny_model import build_tiny_components

    pipe = I2VGenXLPipeline(**build_tiny_components())
    outcomes = {o.name: o for o in pl.apply_optimisations(pipe, pl.plan_load("cuda", has_xformers=False))}
    assert outcomes["fp16"].status == pl.APPLIED
    assert "SDPA" in outcomes["attention"].detail
    unet = outcomes["gradient checkpointing (unet)"]
    assert unet.status == pl.NOT_SUPPORTED and "ValueError" in unet.detail
    for name in ("text_encoder", "image_encoder", "vae"):
        outcome = outcomes[f"gradient checkpointing ({name})"]
        assert outcome.status == pl.NO_EFFECT
        assert "no_grad" in outcome.detail and "saves no memory" in outcome.detail
    assert pipe.text_encoder.text_model is pipe.text_encoder      # the transformers-5 trap is handled
    assert not any(k.startswith("text_model.") for k in pipe.text_encoder.state_dict())


def test_xformers_failure_falls_back_to_sdpa_and_says_why():
    class NoXformersPipe:
        def enable_xformers_memory_efficient_attention(self):
            raise ModuleNotFoundError("No module named 'xformers'")

    outcome = pl.apply_attention(NoXformersPipe(), pl.plan_load("cuda", has_xformers=True))
    assert outcome.status == pl.APPLIED and "SDPA" in outcome.detail and "xformers failed" in outcome.detail


def test_auto_falls_back_to_tiny_quickly_when_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import socket

    connects = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        connects.append(address)
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    choice = pl.choose_model("auto")
    assert connects == []              # quick because offline means no network try at all (not a timing)
    assert choice.kind == "tiny" and choice.is_placeholder
    assert "noise" in choice.banner and "huggingface-cli download" in choice.banner


def test_unreachable_hub_never_hangs(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # nothing listens on the discard port
    started = time.monotonic()
    with pytest.raises(pl.ModelUnavailable, match="not in the local Hugging Face cache"):
        pl.choose_model("someone/some-model")
    assert time.monotonic() - started < pl.HUB_PROBE_TIMEOUT_S * 3 + 30     # a hang guard, not a timing


def test_local_folder_must_be_a_diffusers_model(tmp_path):
    with pytest.raises(pl.ModelUnavailable, match="model_index.json"):
        pl.choose_model(str(tmp_path))
    (tmp_path / "model_index.json").write_text("{}")
    assert pl.choose_model(str(tmp_path)).kind == "local"
