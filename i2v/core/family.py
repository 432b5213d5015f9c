"""The rules one model family puts on a request: its settings rows (defaults, ranges, choices), the size and
frame rules, whether a prompt is required, and which plan parts it can vary.

The settings table (i2v.core.settings) lists every row once, with I2VGen-XL's values; a family overrides the
values it needs (Wan 2.2: 121 frames at 24 fps, guidance 5). The family records in i2v/models build these;
everything that validates or shows a setting asks the rules of the model that runs. Stdlib only.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from i2v.core.errors import I2VError, echo
from i2v.core.plans import I2VGEN_PARTS
from i2v.core.settings import SETTINGS, SIZE_MULTIPLE, Setting

I2VGEN_XL = "i2vgen-xl"          # the first family's name (the default everywhere a family is not given)


@dataclass(frozen=True)
class FamilyRules:
    name: str = I2VGEN_XL
    title: str = "I2VGen-XL"
    # setting name -> {field of Setting: value}: default, minimum, maximum, step, choices, help, help_zh
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    size_multiple: int = SIZE_MULTIPLE     # width and height are multiples of this
    frames_step: int = 1                   # > 1: frame counts are frames_step x k + 1 (Wan: 4k + 1)
    prompt_required: bool = True
    plan_parts: tuple[str, ...] = I2VGEN_PARTS

    def settings(self) -> tuple[Setting, ...]:
        """The settings table with this family's values."""
        return tuple(dataclasses.replace(s, **self.overrides[s.name]) if s.name in self.overrides else s
                     for s in SETTINGS)

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings() if s.name == name)

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.settings()}

    def check_frames(self, frames: Any) -> I2VError | None:
        """The frame rule (a count the model's VAE can compress), naming the field and the nearest counts."""
        if self.frames_step <= 1 or not isinstance(frames, int) or (frames - 1) % self.frames_step == 0:
            return None
        below = (frames - 1) // self.frames_step * self.frames_step + 1
        return I2VError("field_frames_rule", field="num_frames", value=echo(frames), step=self.frames_step,
                        below=below, above=below + self.frames_step)

    def nearest_frames(self, frames: int) -> int:
        """The closest allowed frame count at or below `frames` (at least the minimum)."""
        if self.frames_step <= 1:
            return frames
        low = int(self.setting("num_frames").minimum or 1)
        return max(low, (frames - 1) // self.frames_step * self.frames_step + 1)

    def as_dict(self) -> dict[str, Any]:
        """What a client needs to show this family's rows (the page and the API's model answer)."""
        return {"name": self.name, "title": self.title, "size_multiple": self.size_multiple,
                "frames_step": self.frames_step, "prompt_required": self.prompt_required,
                "plan_parts": list(self.plan_parts),
                "settings": {s.name: {"default": s.default, "minimum": s.minimum, "maximum": s.maximum,
                                      "step": s.step, "choices": list(s.choices) if s.choices else None}
                             for s in self.settings()}}


DEFAULT_RULES = FamilyRules()
