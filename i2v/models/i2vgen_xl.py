"""I2VGen-XL (ali-vilab/i2vgen-xl): the first family. A UNet with CLIP text and image encoders and the SD 2.x
VAE, fp16 on CUDA; every plan part applies (CFG runs batched, so splitting it is a choice)."""
from __future__ import annotations

from i2v.core.family import I2VGEN_XL, FamilyRules
from i2v.core.plans import I2VGEN_PARTS
from i2v.core.settings import MODEL_REPO_ID
from i2v.models.base import Family

# SD 1.x/2.x VAE latents (as the pipeline holds them: scaled by 0.18215) -> RGB in [-1, 1], the live preview's
# linear approximation: ComfyUI comfy/latent_formats.py, class SD15 `latent_rgb_factors` (no bias there).
SD_LATENT_RGB = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721),
                 (-0.2120, -0.2616, -0.7177))

FAMILY = Family(
    rules=FamilyRules(name=I2VGEN_XL, title="I2VGen-XL", plan_parts=I2VGEN_PARTS),
    repo_id=MODEL_REPO_ID,
    aliases=("i2vgen-xl", "i2vgen"),
    tiny_alias="tiny",
    pipeline_class="I2VGenXLPipeline",
    index_classes=("I2VGenXLPipeline",),
    components=("unet", "vae", "text_encoder", "image_encoder"),
    denoiser="unet",
    cuda_variant="fp16",
    cuda_dtype="fp16",
    runtime="i2v.models.i2vgen_xl_runtime",
    configs_folder="model",
    profile_file="memory_profile.json",
    presets_file="presets.toml",
    size_on_disk_gib=4.6,
    preview_factors=SD_LATENT_RGB,
    notes="kept under diffusers' pipelines/deprecated (last supported there: 0.33.1); runs unchanged on 0.42.1",
)
