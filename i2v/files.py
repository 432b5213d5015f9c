"""Whole files or none: every file the app writes (videos' sidecars, configs, profiles, bench results) goes
through here. The text goes to a temp file in the same folder, is flushed to disk, given the usual permissions
and renamed over the target in one step, so a reader or a crash never sees half a file.

And the one rule for a file the app serves, reuses or deletes in a folder others can write to (outputs/):
`is_own_file` (a regular file, not a link, whose resolved path is inside the folder). A link planted where a
file of ours belongs is never followed: `remove_link` removes the link itself, never its target."""
from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable


def readable_mode() -> int:
    """0666 minus the umask: mkstemp's files are 0600, outputs should read like any other file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: Path, text: str, prefix: str | None = None) -> Path:
    """Write UTF-8 text to path atomically; prefix names the temp file (e.g. tagged with the writer's PID)."""
    return write_file_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"), prefix)


def write_json_atomic(path: Path, data, indent: int = 2, prefix: str | None = None) -> Path:
    """JSON (UTF-8 kept readable, anything unusual as its str) written atomically."""
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str) + "\n"
    return write_text_atomic(path, text, prefix)


def write_file_atomic(path: Path, fill: Callable[[Path], None], prefix: str | None = None) -> Path:
    """A file written atomically: fill(temp_path) writes it (text, a GIF, a zip), then it is synced and renamed."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fill(Path(tmp_name))
        with open(tmp_name, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_name, readable_mode())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


log = logging.getLogger(__name__)


def is_own_file(path: Path, root: Path) -> bool:
    """THE rule for anything served, reused or deleted in outputs/ (videos, sidecars, input images, thumbnails,
    exports) or in Gradio's cache: a regular file, not a symbolic link (nor a FIFO, device or folder), whose
    resolved path (every folder above it resolved too) is inside root. Missing or unreadable: False."""
    path = Path(path)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return path.resolve(strict=True).is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError, ValueError):     # gone, a loop in the folders above, a NUL in the name
        return False


def is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def remove_link(path: Path) -> bool:
    """Remove path if it is a symbolic link (the link itself: its target is never touched); True if removed."""
    if not is_link(path):
        return False
    log.warning("removed a symbolic link planted at %s (its target is untouched)", path)
    try:
        os.unlink(path)                 # unlink never follows the last component
    except FileNotFoundError:
        pass
    return True


def remove_own(path: Path, root: Path) -> bool:
    """Delete path if it is one of ours under root (is_own_file), or a link planted there (the link only, and
    only when the folder holding it resolves inside root). Anything else is left alone. True if removed."""
    path = Path(path)
    try:
        inside = path.parent.resolve(strict=True).is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError, ValueError):
        return False
    if not inside:
        return False
    if is_link(path):
        return remove_link(path)
    if not is_own_file(path, root):
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def remove_matching(directory: Path, pattern: str) -> list[Path]:
    """Delete the files (or links: the link itself) directly in directory whose names match the glob pattern;
    folders and anything whose folder resolves elsewhere are left alone."""
    directory = Path(directory)
    removed = []
    try:
        found = sorted(directory.glob(pattern))
    except (OSError, ValueError):
        return removed
    for path in found:
        if path.parent == directory and remove_own(path, directory):
            removed.append(path)
    return removed
