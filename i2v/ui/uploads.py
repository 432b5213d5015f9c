"""Uploaded images do not pile up in Gradio's temp folder: an API client's upload is removed when its job ends
(gradio_client uploads the file again for every call); the page's uploads, which the page sends again on its
next Generate, are removed when the page goes away (its unload event). Only regular files inside Gradio's upload
folder are removed (files.is_own_file), with the per-upload folder Gradio made for them once empty."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from i2v import files

log = logging.getLogger(__name__)


def upload_folder() -> Path:
    from gradio import utils

    return Path(utils.get_upload_folder())


def remove_upload(path, folder: Path | None = None) -> bool:
    """Remove an uploaded file (and its now-empty folder) if it lies in the upload folder; True if removed."""
    if not isinstance(path, (str, Path)) or str(path).startswith("data:"):
        return False
    folder = upload_folder() if folder is None else folder
    path = Path(path)
    if not files.is_own_file(path, folder):
        return False
    path.unlink(missing_ok=True)
    parent = path.parent
    if parent.resolve() != folder.resolve():
        try:
            parent.rmdir()                      # only when empty: another upload may share it
        except OSError:
            pass
    log.info("removed the uploaded file %s", path.name)
    return True


class SessionUploads:
    """The uploads each page session used, removed together when that page goes away."""

    def __init__(self):
        self._paths: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def add(self, session: str | None, path) -> None:
        if session and isinstance(path, (str, Path)) and not str(path).startswith("data:"):
            with self._lock:
                self._paths.setdefault(session, set()).add(str(path))

    def remove_all(self, session: str | None, folder: Path | None = None) -> int:
        with self._lock:
            paths = self._paths.pop(session, set()) if session else set()
        return sum(remove_upload(path, folder) for path in paths)
