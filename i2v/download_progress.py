"""A download's progress, from the bytes written (one count per chunk huggingface_hub's http_get writes): done,
total, a rate over the last seconds and an ETA; cancel checked at each chunk; a start-up download's lines in the
log. Apart from i2v.downloads so each stays small."""
from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from i2v.core.errors import I2VError


class DownloadError(I2VError, RuntimeError):
    """A download that cannot go on: offline, too little disk, a file that stays damaged, cancelled."""


class Cancelled(DownloadError):
    """The user cancelled (the kept partial resumes next time)."""

log = logging.getLogger("i2v.downloads")
BAR_WIDTH = 30
LINE_EVERY_S = 2.0        # without a terminal: a progress line at most this often


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
    """A start-up download (`--model REPO`): lines in the log, and the bar on the console (stderr)."""
    _LOG_PROGRESS(p)
    _CONSOLE(p)


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


def size_text(n: float) -> str:
    """Bytes as the Hub shows them: GB (10^9) from 1 GB, else MB."""
    return f"{n / 1e9:.2f} GB" if abs(n) >= 1e9 else f"{n / 1e6:.1f} MB"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def progress_line(p) -> str:
    """`[#####.....] 1.20 of 4.60 GB  35.2 MB/s  ETA 1:40  unet/…` (the bar and the figures of bytes written)."""
    fraction = p.done / p.total if p.total else 1.0
    filled = int(round(BAR_WIDTH * fraction))
    return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {size_text(p.done)} of {size_text(p.total)}  "
            f"{p.rate / 1e6:.1f} MB/s  ETA {_eta(p.eta_s)}  {p.file}")


class Console:
    """Progress on stderr: a bar redrawn in place on a terminal, else a line every few seconds."""

    def __init__(self, stream=sys.stderr):
        self.stream, self.tty, self.last = stream, stream.isatty(), 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + progress_line(p)[:200])
        elif now - self.last >= LINE_EVERY_S or p.state != "downloading":
            self.stream.write(progress_line(p) + "\n")
        else:
            return
        self.last = now
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")


_CONSOLE = Console()
