"""What a running job tells its caller: ProgressUpdate (a phase, its step count, the bar's fraction and, every
few denoising steps, the live preview's JPEG strip) and the share of the bar each phase gets."""
from __future__ import annotations

from dataclasses import dataclass

from i2v.core import words

# Share of the progress bar given to each phase (denoising dominates real runs).
PROGRESS_SPANS = {"load": (0.0, 0.0), "attempt": (0.0, 0.0), "text_encode": (0.0, 0.02), "image_encode": (0.02, 0.05),
                  "denoise": (0.05, 0.90), "decode": (0.90, 0.98)}
PHASE_UNITS = {"denoise": "steps", "decode": "chunks", "text_encode": "calls", "image_encode": "calls"}


@dataclass(frozen=True)
class ProgressUpdate:
    phase: str
    index: int
    total: int
    fraction: float
    preview: bytes | None = None      # the live preview (i2v.preview): a JPEG strip of a few frames, or None

    @property
    def unit(self) -> str:
        return PHASE_UNITS.get(self.phase, "")

    @property
    def label(self) -> str:
        return self.text("en")

    def text(self, lang: str) -> str:
        """'Denoising 3/20' in lang, from the catalogue's progress_* words."""
        key = f"progress_{self.phase}"
        name = words.render(key, lang) if words.has(key) else self.phase
        return f"{name} {self.index}/{self.total}" if self.total else name


def progress_fraction(phase: str, index: int, total: int) -> float:
    low, high = PROGRESS_SPANS.get(phase, (0.98, 1.0))
    return low + (high - low) * (min(index, total) / total if total else 1.0)


def update_for(phase: str, index: int, total: int, preview: bytes | None = None) -> ProgressUpdate:
    """The update for a runner event; a "preview" event is a denoising update that carries the strip."""
    phase = "denoise" if phase == "preview" else phase
    return ProgressUpdate(phase, index, total, progress_fraction(phase, index, total), preview)
