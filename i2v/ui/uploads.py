"""Uploaded images do not pile up in Gradio's temp folder, and no one's image is removed while in use.

Gradio stores identical uploads once (the folder is named by the content's hash), so two tabs, or a tab and an
API client, sending the same picture share one file. Each upload is therefore held by whoever uses it: a page
session from the moment it shows the image (until it shows another or goes away: its unload event), an API call
while its job runs; a job still waiting in the queue holds it too. The file is removed when its last holder lets
go. Only regular files inside Gradio's upload folder are removed (files.is_own_file), with the per-upload folder
Gradio made for them once empty."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from i2v import files

log = logging.getLogger(__name__)


def upload_folder() -> Path:
    from gradio import utils

    return Path(utils.get_upload_folder())


def is_upload_path(path) -> bool:
    return isinstance(path, (str, Path)) and bool(str(path)) and not str(path).startswith("data:")


def remove_upload(path, folder: Path | None = None) -> bool:
    """Remove an uploaded file (and its now-empty folder) if it lies in the upload folder; True if removed."""
    if not is_upload_path(path):
        return False
    folder = upload_folder() if folder is None else folder
    path = Path(path)
    if not files.is_own_file(path, folder):
        return False
    path.unlink(missing_ok=True)
    parent = path.parent
    if parent.resolve() != folder.resolve():
        try:
            parent.rmdir()                      # only when empty
        except OSError:
            pass
    log.info("removed the uploaded file %s", path.name)
    return True


class Uploads:
    """Who holds which uploaded file; a file no one holds (and no waiting job names) is removed."""

    def __init__(self, waiting_paths: Callable[[], set[str]] = set, folder: Callable[[], Path] = upload_folder):
        self._holders: dict[str, set[str]] = {}       # path -> holders (page sessions, API call tokens)
        self._lock = threading.Lock()
        self._waiting_paths, self._folder = waiting_paths, folder

    def hold(self, holder: str | None, path, only: bool = False) -> None:
        """holder uses path; only: it uses no other upload any more (a page that changed its image)."""
        if not holder:
            return
        released = self._release(holder, keep=str(path) if is_upload_path(path) else None) if only else []
        if is_upload_path(path):
            with self._lock:
                self._holders.setdefault(str(path), set()).add(holder)
        self._remove_unheld(released)

    def release(self, holder: str | None) -> int:
        """holder lets go of everything it held; what no one holds any more is removed. How many files went."""
        return self._remove_unheld(self._release(holder) if holder else [])

    def _release(self, holder: str, keep: str | None = None) -> list[str]:
        with self._lock:
            freed = []
            for path, holders in list(self._holders.items()):
                if holder in holders and path != keep:
                    holders.discard(holder)
                    if not holders:
                        del self._holders[path]
                        freed.append(path)
            return freed

    def _remove_unheld(self, paths: list[str]) -> int:
        if not paths:
            return 0
        waiting = self._waiting_paths()
        with self._lock:
            unheld = [p for p in paths if p not in self._holders and p not in waiting]
        return sum(remove_upload(path, self._folder()) for path in unheld)
