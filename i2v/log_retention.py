"""Logs that do not grow forever, for an app left running for months (under systemd, say).

- i2v.log and worker.log rotate by size through logging's RotatingFileHandler (i2v.cli, i2v.worker.child).
- logs/oom.jsonl is appended to by the service (one line per OOM); `rotate_if_larger` renames it to
  oom.jsonl.1 (.2, ...) past a size, keeping a few; the server calls it at start and now and then.
- logs/app.log: the started app's stdout/stderr (start_app.sh), overwritten at each start: one console log,
  beside i2v.log (the run's own, rotated log). Older versions wrote logs/app_*.log, one per start; `keep_newest`
  (keep=0) removes those left over.
`recent_ooms` reads the OOM records back, newest first, for `main.py service status` (or doctor).
"""
from __future__ import annotations

import json
from pathlib import Path

APP_LOG_NAME = "app.log"            # the started app's console, overwritten at each start
APP_LOG_PATTERN = "app_*.log"       # the per-start logs of older versions
APP_LOGS_KEPT = 0                   # none kept: app.log and i2v.log are the logs
OOM_LOG_NAME = "oom.jsonl"
OOM_LOG_MAX_BYTES = 1024 * 1024
OOM_LOGS_KEPT = 3           # oom.jsonl.1 .. .3 beside the current file


def keep_newest(folder: Path, pattern: str = APP_LOG_PATTERN, keep: int = APP_LOGS_KEPT,
                spare: Path | None = None) -> list[Path]:
    """Remove all but the `keep` newest files matching pattern (by modification time, then name); `spare` (the
    log being written now) is never removed. Returns what was removed."""
    files = sorted((p for p in Path(folder).glob(pattern) if p.is_file()),
                   key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    removed = []
    for path in files[keep:]:
        if spare is not None and path.resolve() == spare.resolve():
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def rotate_if_larger(path: Path, max_bytes: int = OOM_LOG_MAX_BYTES, keep: int = OOM_LOGS_KEPT) -> bool:
    """Past max_bytes, path becomes path.1 (path.1 -> path.2 ..., the oldest beyond `keep` dropped); the writer
    opens the file anew for each record, so it simply starts a fresh one. True if it rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except OSError:
        return False
    rotated(path, keep).unlink(missing_ok=True)
    for index in range(keep - 1, 0, -1):
        if rotated(path, index).exists():
            rotated(path, index).replace(rotated(path, index + 1))
    if keep > 0:
        path.replace(rotated(path, 1))
    else:
        path.unlink(missing_ok=True)
    return True


def bound_logs(logs_dir: Path) -> None:
    """What the server does at start and now and then: oom.jsonl kept within its size."""
    rotate_if_larger(Path(logs_dir) / OOM_LOG_NAME)


def recent_ooms(logs_dir: Path, limit: int = 5) -> list[dict]:
    """The newest OOM records (newest first) from oom.jsonl and its rotated files; unreadable lines skipped."""
    records: list[dict] = []
    path = Path(logs_dir) / OOM_LOG_NAME
    for candidate in [path, *(rotated(path, i) for i in range(1, OOM_LOGS_KEPT + 1))]:
        try:
            lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
            if len(records) >= limit:
                return records
    return records


def oom_summary(logs_dir: Path, limit: int = 5) -> list[str]:
    """One line per recent OOM: when, in which phase, what ran, what happened next."""
    lines = []
    for record in recent_ooms(logs_dir, limit):
        request = record.get("request") or {}
        what = (f"{request.get('width')}x{request.get('height')}, {request.get('num_frames')} frames"
                if isinstance(request, dict) and request.get("width") else "")
        lines.append(" ".join(part for part in (str(record.get("time", "?")), f"phase {record.get('phase', '?')}",
                                                what, f"-> {record.get('outcome', '?')}") if part))
    return lines
