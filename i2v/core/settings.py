"""The one table of user-facing generation parameters: name, default, limits, help.

The UI sliders, the CLI flags, request validation, the README table and the tests all read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    def check(self, value: Any) -> str | None:
        """Return an error message for a bad value, or None when the value is acceptable."""
        if self.kind is bool:
            return None if isinstance(value, bool) else f"{self.name} must be true or false, got {value!r}"
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{self.name} must be a number, got {value!r}"
            if self.kind is int and float(value) != int(value):
                return f"{self.name} must be a whole number, got {value!r}"
        elif not isinstance(value, self.kind):
            return f"{self.name} must be {self.kind.__name__}, got {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {', '.join(map(str, self.choices))}; got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be at least {self.minimum}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be at most {self.maximum}, got {value!r}"
        return None


# Defaults follow I2VGenXLPipeline.__call__ (FACTS.md): 16 frames, 50 steps, guidance 9.0, target_fps 16.
SETTINGS: tuple[Setting, ...] = (
    Setting("prompt", "Prompt", "", "What should happen in the video.", str),
    Setting(
        "negative_prompt", "Negative prompt",
        "Distorted, discontinuous, ugly, blurry, low resolution, motionless, static",
        "What the video should avoid.", str,
    ),
    Setting(
        "resolution", "Resolution (short side)", 512,
        "Short side in pixels; the long side follows the input image's aspect ratio.",
        int, choices=(256, 512, 768, 1024),
    ),
    Setting("num_frames", "Frames", 16, "Number of video frames to generate.", int, 2, 64, 1),
    Setting(
        "fps", "FPS", 16,
        "Frame rate: conditions the motion (the model's fps embedding) and is the MP4's playback rate.",
        int, 1, 30, 1,
    ),
    Setting(
        "num_inference_steps", "Steps", 50,
        "Denoising steps. Time grows linearly; fewer than 50 gives visibly worse results with this scheduler.",
        int, 1, 150, 1,
    ),
    Setting("guidance_scale", "Guidance scale", 9.0, "How strongly to follow the prompt (1 = off).", float, 1.0, 20.0, 0.5),
    Setting("seed", "Seed", -1, "Random seed; -1 picks one at random (the used seed is reported).", int, -1, 2**32 - 1, 1),
)

SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# Limits that are not sliders.
MAX_ASPECT_RATIO = 2.0          # long side / short side; wider images are center-cropped to this
SIZE_MULTIPLE = 8               # width and height must be multiples of this (pipeline check)
MAX_PROMPT_CHARS = 2000
DEFAULT_DECODE_CHUNK_SIZE = 1   # frames per VAE decode call (pipeline default; lowest memory)
# Where the weights live while a job runs, fastest first: all on the GPU; each component moved in while it runs
# (model CPU offload); streamed from RAM layer by layer on a side stream (diffusers group offloading); moved in
# module by module without overlap (sequential CPU offload).
OFFLOAD_MODES = ("none", "model", "group", "sequential")
WEIGHTS_DTYPES = ("fp16", "fp8")   # fp8: weights stored in float8, computed in fp16 (lossy)
MAX_SEED = 2**32 - 1


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
AUTO_FALLBACK = True
MAX_ATTEMPTS = 4
