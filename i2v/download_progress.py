"""A download's progress, from the bytes written (one count per chunk huggingface_hub's http_get writes): done,
total, a rate over the last seconds and an ETA; cancel checked at each chunk; a start-up download's lines in the
log. Apart from i2v.downloads so each stays small."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("i2v.downloads")


# ----------------------------------------------------------------------------------------------------------
@dataclass
class Progress:
    repo_id: str
    total: int
    done: int = 0
    file: str = ""
    state: str = "downloading"       # downloading | verifying | ready | failed | cancelled
    rate: float = 0.0                # bytes/s over the last few seconds
    message: str = ""

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


class _Meter:
    """Counts bytes written and keeps a rate over a sliding window; calls the listener at most every 0.25 s."""

    def __init__(self, progress: Progress, listener: Callable[[Progress], None] | None,
                 cancel: threading.Event | None, clock=time.monotonic):
        self.progress, self.listener, self.cancel, self.clock = progress, listener, cancel, clock
        self.samples: list[tuple[float, int]] = [(clock(), progress.done)]
        self.last_call = 0.0

    def add(self, n: int, force: bool = False) -> None:
        if self.cancel is not None and self.cancel.is_set():
            from i2v.downloads import Cancelled

            raise Cancelled("download_cancelled", repo=self.progress.repo_id)
        now = self.clock()
        self.progress.done += n
        self.samples = [s for s in self.samples if now - s[0] <= 5.0] + [(now, self.progress.done)]
        elapsed = now - self.samples[0][0]
        if elapsed > 0:
            self.progress.rate = (self.progress.done - self.samples[0][1]) / elapsed
        if self.listener is not None and (force or now - self.last_call >= 0.25):
            self.last_call = now
            self.listener(self.progress)


class _LogProgress:
    """A start-up download's progress in the log (the console shows INFO): a line every 10 s."""

    def __init__(self, every_s: float = 10.0):
        self.every_s, self.last = every_s, 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s or p.state != "downloading":
            self.last = now
            eta = f"{p.eta_s:.0f} s" if p.eta_s is not None else "?"
            log.info("download %s: %.2f of %.2f GB, %.1f MB/s, ETA %s (%s)", p.repo_id, p.done / 1e9,
                     p.total / 1e9, p.rate / 1e6, eta, p.file or p.state)


def log_progress(p: Progress) -> None:
    _LOG_PROGRESS(p)


_LOG_PROGRESS = _LogProgress()


def _tqdm_class(meter: _Meter):
    """A silent tqdm whose updates (one per chunk http_get writes) go to the meter."""
    from tqdm.auto import tqdm

    class Counting(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if n:
                meter.add(int(n))
            return super().update(n)

    return Counting
