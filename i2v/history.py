"""Past outputs: listing (with whatever their sidecars say, checked) and deletion — inside outputs/ only.

A sidecar is data written by us, but it sits in a folder users and other programs can write to, so it is read
defensively: anything that is not a JSON object is ignored, its values are coerced to the shapes the page
expects, and a path is never taken from it: the video is always the file next to the sidecar.

Nothing that is a link, or resolves outside outputs/, is listed, read or deleted (files.is_own_file): a video,
sidecar or input image planted as a symbolic link is not offered; deleting removes such a link itself, never its
target.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from i2v import files, video

log = logging.getLogger(__name__)

MAX_SIDECAR_BYTES = 1 << 20        # a sidecar we wrote is a few KiB; anything huge is not ours
PATH_KEYS = ("video_path", "sidecar_path", "video", "input_image")   # never trusted from a sidecar


def read_sidecar(path: Path, root: Path | None = None) -> dict[str, Any]:
    """The sidecar as a checked dict ({} when missing, a link, outside root (default: its folder), unreadable,
    huge or not a JSON object)."""
    path = Path(path)
    try:
        if not files.is_own_file(path, root or path.parent) or path.stat().st_size > MAX_SIDECAR_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        log.warning("unreadable sidecar %s", path)
        return {}
    if not isinstance(data, dict):
        log.warning("sidecar %s is not a JSON object; ignored", path)
        return {}
    clean = {k: v for k, v in data.items() if isinstance(k, str) and k not in PATH_KEYS}
    for key in ("parameters", "timings_s", "plan", "load_report"):
        if key in clean and not isinstance(clean[key], dict):
            clean.pop(key)
    if "timings_s" in clean:
        clean["timings_s"] = {str(k): v for k, v in clean["timings_s"].items() if isinstance(v, (int, float))}
    for key in ("seed", "attempts"):
        if key in clean and (isinstance(clean[key], bool) or not isinstance(clean[key], int)):
            clean.pop(key)
    for key in ("created", "model", "warning", "plan_words"):
        if key in clean and not isinstance(clean[key], str):
            clean[key] = str(clean[key])
    if "adjustments" in clean and not isinstance(clean["adjustments"], list):
        clean.pop("adjustments")
    return clean


def list_outputs(outputs_dir: Path, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first: the MP4s in outputs_dir with their checked sidecar data; video_path is the real file."""
    root = Path(outputs_dir)
    if not root.is_dir():
        return []
    videos = []
    for path in root.glob(f"{video.VIDEO_PREFIX}_*{video.VIDEO_SUFFIX}"):
        try:
            if files.is_own_file(path, root):
                videos.append((path.stat().st_mtime, path))
        except OSError:
            continue
    videos.sort(reverse=True)
    from i2v.exports import input_path

    entries = []
    for _, path in videos[:limit]:
        entry = {**read_sidecar(video.sidecar_path(path), root), "video_path": str(path)}
        image = input_path(path)      # found beside the video, never taken from the sidecar
        if files.is_own_file(image, root):
            entry["input_image"] = str(image)
        entries.append(entry)
    return entries


def resolve_output(outputs_dir: Path, path: str | Path) -> Path:
    """The output file an untrusted path names, if it is an MP4 directly inside outputs_dir; else ValueError."""
    root = Path(outputs_dir).resolve()
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    target = candidate.resolve()
    if (target.parent != root or target.suffix != video.VIDEO_SUFFIX or files.is_link(candidate)
            or (target.exists() and not files.is_own_file(target, root))):
        raise ValueError(f"{Path(path).name} is not an output of this app")
    return target


def delete_output(outputs_dir: Path, path: str | Path) -> list[Path]:
    """Delete an output MP4, its JSON sidecar and its companions (input image, thumbnail, GIF, frames zip);
    refuse (ValueError) anything that is not an MP4 in outputs_dir. A companion planted as a link is removed
    as a link (its target untouched); nothing outside outputs_dir is ever deleted (files.remove_own)."""
    target = resolve_output(outputs_dir, path)
    root = Path(outputs_dir).resolve()
    removed = []
    from i2v.exports import companion_paths

    for file in (target, video.sidecar_path(target), *companion_paths(target)):
        if files.remove_own(file, root):
            removed.append(file)
    return removed
