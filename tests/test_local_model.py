"""The real loading path (`from_pretrained` on a diffusers folder), exercised with the tiny model saved to disk."""
import pytest

from i2v import pipeline as pl
from i2v.core.request import build_request


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    from diffusers import I2VGenXLPipeline

    from i2v.tiny_model import build_tiny_components

    folder = tmp_path_factory.mktemp("tiny-diffusers")
    I2VGenXLPipeline(**build_tiny_components()).save_pretrained(folder)
    return folder


def test_a_local_diffusers_folder_loads_and_generates(saved_tiny, sample_image):
    from PIL import Image

    choice = pl.choose_model(str(saved_tiny))
    assert (choice.kind, choice.banner) == ("local", None)
    loaded = pl.load_pipeline(choice, device="cpu")
    assert loaded.report.kind == "local" and loaded.report.dtype == "float32"
    statuses = {o.name: o.status for o in loaded.report.outcomes}
    assert statuses["gradient checkpointing (unet)"] == pl.NOT_SUPPORTED
    image = Image.open(sample_image).convert("RGB")
    request = build_request(image.size, prompt="a lake", resolution=256, num_frames=2, num_inference_steps=1)
    latents = pl.sample_latents(loaded, image, request, seed=1, listener=None)
    frames = pl.decode_frames(loaded, latents, request, listener=None)
    assert frames.shape == (2, request.height, request.width, 3) and frames.dtype.name == "uint8"
