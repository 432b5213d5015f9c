"""Whole files or none: every file the app writes (videos' sidecars, configs, profiles, bench results) goes
through here. The text goes to a temp file in the same folder, is flushed to disk, given the usual permissions
and renamed over the target in one step, so a reader or a crash never sees half a file."""
from __future__ import annotations

import json
import os
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
