"""Wan 2.2 TI2V-5B (Wan-AI/Wan2.2-TI2V-5B-Diffusers): a 5B DiT with a UMT5-XXL text encoder and the Wan 2.2
VAE (x16 spatial, x4 temporal, 48 channels), bf16 on CUDA; diffusers' WanImageToVideoPipeline with
expand_timesteps. The pipeline already runs the two guidance passes one after another (no CFG split to
choose), the VAE decodes latent frame by frame (no decode chunk), and the text encoder may run on the CPU."""
from __future__ import annotations

from i2v.core.family import FamilyRules
from i2v.models.base import three_part_family

NAME = "wan2.2-ti2v-5b"
REPO_ID = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
WAN_PARTS = ("offload", "chunk_tokens", "weights_dtype", "vae_tiling", "text_encoder_cpu")

RULES = FamilyRules(
    name=NAME,
    title="Wan 2.2 TI2V-5B",
    overrides={
        "resolution": {"default": 704, "choices": (256, 480, 704)},
        "num_frames": {"default": 121, "minimum": 5, "maximum": 121, "step": 4,
                       "help": "Number of video frames: 4k+1 (5, 9, ... 121); 121 is five seconds at 24 fps."},
        "fps": {"default": 24, "help": "The MP4's playback rate (Wan 2.2 is trained at 24 fps; it does not "
                                       "condition the motion)."},
        "guidance_scale": {"default": 5.0},
    },
    size_multiple=32, frames_step=4, prompt_required=False, plan_parts=WAN_PARTS,
)

FAMILY = three_part_family(
    RULES, "wan", repo_id=REPO_ID,
    aliases=(NAME, "wan2.2", "wan"),
    pipeline_class="WanImageToVideoPipeline",
    index_classes=("WanPipeline", "WanImageToVideoPipeline"),
    index_keys={"expand_timesteps": True},
    # transformer and VAE stored in fp32, the encoder in bf16 (a published model card says so; not verified
    # here): 20.0 + 2.8 + 11.4 GB from the parameter counts on meta (docs/models/wan.md)
    size_on_disk_gib=31.8,
    notes="text encoder UMT5-XXL (~11 GB in bf16) may run on the CPU (exact, slower)",
)
