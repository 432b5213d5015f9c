"""The outputs folder in the History tab: how many videos it holds and their size on disk, and, for an app on
this computer's loopback, a button that opens it in the desktop's file manager (xdg-open / open). A remote
client never gets the button, and the handler checks the caller again: it would open a window on the server."""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from i2v.i18n import lang_of, text

log = logging.getLogger(__name__)


def folder_figures(outputs_dir: Path) -> tuple[int, int]:
    """(videos, bytes): our MP4s (history's own list: planted files and links are not ours) and every regular
    file in the folder (sidecars, inputs, exports: what the folder costs on disk)."""
    from i2v import history

    root = Path(outputs_dir)
    if not root.is_dir():
        return 0, 0
    videos = len(history.list_outputs(root, limit=1_000_000))
    size = 0
    for path in root.iterdir():
        try:
            if path.is_file() and not path.is_symlink():
                size += path.stat().st_size
        except OSError:
            pass
    return videos, size


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def summary(outputs_dir: Path, lang: str) -> str:
    videos, size = folder_figures(outputs_dir)
    return text(lang, "outputs_folder_line", path=str(outputs_dir), count=videos, size=size_text(size))


def opener() -> list[str] | None:
    """The desktop's command that opens a folder, or None (a server without a desktop)."""
    name = "open" if sys.platform == "darwin" else "xdg-open"
    found = shutil.which(name)
    return [found] if found else None


def from_this_computer(request) -> bool:
    host = getattr(getattr(request, "client", None), "host", None) or ""
    from i2v.serving import is_loopback

    return bool(host) and is_loopback(host)


def open_folder(outputs_dir: Path, request, run=subprocess.Popen) -> str:
    """Open the outputs folder on this computer; refused for a caller that is not on the loopback."""
    lang = lang_of(request)
    if not from_this_computer(request):
        return text(lang, "open_folder_remote")
    command = opener()
    if command is None:
        return text(lang, "open_folder_none", path=str(outputs_dir))
    Path(outputs_dir).mkdir(parents=True, exist_ok=True)
    try:
        run([*command, str(Path(outputs_dir).resolve())], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        log.warning("could not open %s", outputs_dir, exc_info=True)
        return text(lang, "open_folder_none", path=str(outputs_dir))
    return text(lang, "open_folder_done", path=str(outputs_dir))


def handlers(outputs_dir: Path):
    """The page's two events over this folder, each with the caller's request (Gradio passes a gr.Request to a
    parameter annotated so)."""
    import gradio as gr

    def folder_line(request: gr.Request) -> str:
        return summary(outputs_dir, lang_of(request))

    def open_outputs_folder(request: gr.Request) -> str:
        return open_folder(outputs_dir, request)

    return folder_line, open_outputs_folder
