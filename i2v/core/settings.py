"""The one table of user-facing generation parameters: name, default, limits, help.

The UI sliders, the CLI flags, request validation, the README table and the tests all read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from i2v.core.errors import I2VError, echo, register_field_labels
from i2v.core.offload import OFFLOAD_MODES  # noqa: F401  (where the weights live: the table in core/offload.py)


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    default: Any
    help: str
    kind: type
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple | None = None
    label_zh: str = ""
    help_zh: str = ""
    # words for each choice on the page, (English, Chinese) in the order of `choices`; empty: the values themselves
    choice_labels: tuple[tuple[str, str], ...] = ()

    def check(self, value: Any) -> I2VError | None:
        """The problem with a value (naming this field), or None when the value is acceptable."""
        def problem(key: str, **params: Any) -> I2VError:
            return I2VError(key, field=self.name, value=echo(value), **params)

        if self.kind is bool:
            return None if isinstance(value, bool) else problem("field_not_bool")
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return problem("field_not_number")
            if not math.isfinite(value):
                return problem("field_not_finite")
            if self.kind is int and float(value) != int(value):
                return problem("field_not_whole")
        elif not isinstance(value, self.kind):
            return problem("field_not_text")
        elif self.kind is str and not _encodable(value):     # the tokenizer would fail with its own words
            return I2VError("field_bad_text", field=self.name)
        if self.choices is not None and value not in self.choices:
            return problem("field_not_choice", choices=", ".join(map(str, self.choices)))
        if self.minimum is not None and value < self.minimum:
            return problem("field_too_small", minimum=f"{self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            return problem("field_too_large", maximum=f"{self.maximum:.10g}")
        return None


def _encodable(text: str) -> bool:
    """Whether text is valid Unicode (JSON can carry a lone surrogate such as \\ud800; UTF-8 cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Defaults follow I2VGenXLPipeline.__call__ (docs/facts.md): 16 frames, 50 steps, guidance 9.0, target_fps 16.
SETTINGS: tuple[Setting, ...] = (
    Setting("prompt", "Prompt", "", "What should happen in the video.", str,
            label_zh="提示词", help_zh="视频中应当发生什么。"),
    Setting(
        "negative_prompt", "Negative prompt",
        "Distorted, discontinuous, ugly, blurry, low resolution, motionless, static",
        "What the video should avoid.", str, label_zh="反向提示词", help_zh="视频应当避免的内容。",
    ),
    Setting(
        "resolution", "Resolution (short side)", 512,
        "Short side in pixels; the long side follows the input image's aspect ratio.",
        int, choices=(256, 512, 768, 1024), label_zh="分辨率（短边）", help_zh="短边像素数；长边按输入图片的宽高比计算。",
    ),
    Setting("num_frames", "Frames", 16, "Number of video frames to generate.", int, 2, 64, 1,
            label_zh="帧数", help_zh="生成的视频帧数。"),
    Setting(
        "fps", "FPS", 16,
        "Frame rate: conditions the motion (the model's fps embedding) and is the MP4's playback rate.",
        int, 1, 30, 1, label_zh="帧率", help_zh="帧率：影响运动幅度（模型的 fps 嵌入），也是 MP4 的播放帧率。",
    ),
    Setting(
        "num_inference_steps", "Steps", 50,
        "Denoising steps. Time grows linearly; 30 (the Fast preview preset) is enough for a preview, more steps add "
        "detail.",
        int, 1, 150, 1, label_zh="步数", help_zh="去噪步数。耗时线性增长；30 步（“快速预览”预设）足以预览，步数越多细节越好。",
    ),
    Setting("guidance_scale", "Guidance scale", 9.0, "How strongly to follow the prompt (1 = off).", float, 1.0, 20.0, 0.5,
            label_zh="引导系数", help_zh="遵循提示词的强度（1 = 关闭）。"),
    Setting("seed", "Seed", -1, "Random seed; -1 picks one at random (the used seed is reported).", int, -1, 2**32 - 1, 1,
            label_zh="种子", help_zh="种子；-1 表示随机选择（实际使用的种子会显示在结果中）。"),
    Setting(
        "image_fit", "Wide images", "crop",
        "An image wider (or taller) than 2:1: crop its sides to 2:1, or pad it with black bars to keep all of it.",
        str, choices=("crop", "pad"), label_zh="宽图处理",
        help_zh="宽高比超过 2:1 的图片：裁掉两侧到 2:1，或用黑边补齐以保留整张图。",
        choice_labels=(("Crop the sides", "裁掉两侧"), ("Pad with bars (keep all)", "补黑边（保留整张图）")),
    ),
)
IMAGE_FIELD = "image"
# Every field a message can name: (English label, Chinese label).
FIELD_LABELS: dict[str, tuple[str, str]] = {
    IMAGE_FIELD: ("Input image", "输入图片"),
    **{s.name: (s.label, s.label_zh) for s in SETTINGS},
}
register_field_labels(FIELD_LABELS)        # errors name fields by these labels

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# Limits that are not sliders.
MAX_ASPECT_RATIO = 2.0          # long side / short side; wider images are cropped or padded to this (image_fit)
SIZE_MULTIPLE = 8               # width and height must be multiples of this (pipeline check)
MAX_PROMPT_CHARS = 2000
# The input image: refused above these before it is decoded (a decompression bomb is refused from its header).
MAX_IMAGE_MEGAPIXELS = 40       # 40 MP: a 50-megapixel camera's 8000x5000 is refused, 7680x4320 (8K) accepted
MAX_UPLOAD_MIB = 50             # the web server's upload limit and the image file limit
DEFAULT_DECODE_CHUNK_SIZE = 1   # frames per VAE decode call (pipeline default; lowest memory)
WEIGHTS_DTYPES = ("fp16", "fp8")   # fp8: weights stored in float8, computed in fp16 (lossy)
MAX_SEED = 2**32 - 1
MAX_BATCH = 8                   # the page's "videos per click": one after another, consecutive seeds
RESERVED_WARNING_SHARE = 0.8    # PyTorch's reserved share of the card above which the memory panel suggests a cleanup


def default(name: str) -> Any:
    return SETTINGS_BY_NAME[name].default


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}


def markdown_table() -> str:
    """The README's parameter table (a test keeps the README in sync with this)."""
    rows = ["| parameter | default | range | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        if s.choices:
            allowed = " / ".join(map(str, s.choices))
        elif s.minimum is not None:
            allowed = f"{s.minimum:g} – {s.maximum:.10g}"
        else:
            allowed = "text"
        rows.append(f"| `{s.name}` | `{s.default!r}` | {allowed} | {s.help} |")
    return "\n".join(rows)

# OOM guard: retry down the fallback ladder automatically, at most this many attempts in all.
MODEL_REPO_ID = "ali-vilab/i2vgen-xl"   # the real model on the Hugging Face Hub
AUTO_FALLBACK = True
MAX_ATTEMPTS = 4
