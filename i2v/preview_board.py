"""The live preview on the server's side: per caller (a browser session), the preview interval its page asked
for and the latest strip of its running job, which the page polls (i2v/ui/preview_view.py). A caller that never
asked (the CLI, an API client) gets no previews: nothing is computed for it."""
from __future__ import annotations

import threading
from typing import Callable


class PreviewTap:
    """A job's progress callback with its preview interval (`every`): records each strip on the board, then
    forwards the update to the caller's own callback."""

    def __init__(self, board: "PreviewBoard", owner: str | None, progress: Callable | None):
        self.board, self.owner, self.progress = board, owner, progress
        self.every = board.every(owner)

    def __call__(self, update) -> None:
        if update.preview is not None:
            self.board.put(self.owner, update.preview)
        if self.progress is not None:
            self.progress(update)


class PreviewBoard:
    def __init__(self):
        self._lock = threading.Lock()
        self._every: dict[str, int] = {}
        self._latest: dict[str, tuple[int, bytes]] = {}
        self._count = 0

    def set_every(self, owner: str | None, every) -> int:
        """The page's setting: a preview after every `every` steps (0: off)."""
        value = max(0, int(every or 0))
        if owner:
            with self._lock:
                self._every[owner] = value
        return value

    def every(self, owner: str | None) -> int:
        with self._lock:
            return self._every.get(owner, 0) if owner else 0

    def tap(self, owner: str | None, progress: Callable | None) -> PreviewTap:
        return PreviewTap(self, owner, progress)

    def put(self, owner: str | None, data: bytes) -> None:
        if owner:
            with self._lock:
                self._count += 1
                self._latest[owner] = (self._count, data)

    def latest(self, owner: str | None) -> tuple[int, bytes] | None:
        """(sequence number, JPEG) of the owner's newest strip; None while it has no running job's preview."""
        with self._lock:
            return self._latest.get(owner) if owner else None

    def clear(self, owner: str | None) -> None:
        """The job ended (its video arrived, it stopped or failed): its preview goes."""
        with self._lock:
            self._latest.pop(owner, None)

    def forget(self, owner: str | None) -> None:
        """The page closed: nothing of it is kept."""
        with self._lock:
            self._latest.pop(owner, None)
            self._every.pop(owner, None)


def takes_previews(runner) -> bool:
    """Whether a runner's run() accepts preview_every (LocalRunner, the worker and its pool do; the Ray backend
    does not yet: its jobs run without previews)."""
    import inspect

    try:
        parameters = inspect.signature(runner.run).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "preview_every" or p.kind is p.VAR_KEYWORD for p in parameters)
