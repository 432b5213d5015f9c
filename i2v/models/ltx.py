"""LTX-Video 2B (Lightricks/LTX-Video, 0.9.x): a 2B DiT with a T5-XXL text encoder and a VAE compressing 32x32
pixels and 8 frames into one 128-channel latent token; bf16 on CUDA; diffusers' LTXImageToVideoPipeline.

Its rules: 8k+1 frames, sizes multiples of 32, 25 fps by default (the frame rate conditions the model: it scales
the rotary positions), guidance 3 with 50 steps for the dev checkpoints (a distilled checkpoint runs a few steps
at guidance 1: then there is no CFG, and CFG split does not apply). The pipeline batches the two guidance
halves in one transformer call (so CFG split applies), the decoder sees every frame at once (no decode chunk),
and the text encoder may run on the CPU. docs/models/ltx.md says where each figure comes from.
"""
from __future__ import annotations

from i2v.core.family import FamilyRules
from i2v.models.base import three_part_family

NAME = "ltx-video"
REPO_ID = "Lightricks/LTX-Video"
LTX_PARTS = ("offload", "cfg_split", "chunk_tokens", "weights_dtype", "vae_tiling", "text_encoder_cpu")

RULES = FamilyRules(
    name=NAME,
    title="LTX-Video",
    overrides={
        "resolution": {"default": 512, "choices": (256, 480, 512, 704)},
        "num_frames": {"default": 121, "minimum": 9, "maximum": 161, "step": 8,
                       "help": "Number of video frames: 8k+1 (9, 17, ... 161); 121 is about five seconds at 25 fps.",
                       "help_zh": "视频帧数：8k+1（9、17 …… 161）；121 帧在 25 fps 下约五秒。"},
        "fps": {"default": 25, "help": "Frame rate: LTX-Video conditions its motion on it (the rotary positions) "
                                       "and it is the MP4's playback rate; trained at 25 fps.",
                "help_zh": "帧率：LTX-Video 按它调整运动（旋转位置编码），也是 MP4 的播放帧率；训练时为 25 fps。"},
        "guidance_scale": {"default": 3.0},
    },
    size_multiple=32, frames_step=8, prompt_required=False, plan_parts=LTX_PARTS,
)

FAMILY = three_part_family(
    RULES, "ltx", repo_id=REPO_ID,
    aliases=(NAME, "ltx"),
    pipeline_class="LTXImageToVideoPipeline",
    index_classes=("LTXPipeline", "LTXImageToVideoPipeline", "LTXConditionPipeline"),
    # bf16 weights from the parameter counts on meta (docs/models/ltx.md): transformer 1.92 B, VAE 0.42 B,
    # T5-XXL encoder 4.76 B -> 3.6 + 0.8 + 8.9 GiB
    size_on_disk_gib=13.3,
    notes="text encoder T5-XXL (~9 GiB in bf16) may run on the CPU (exact, slower)",
)
