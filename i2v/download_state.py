"""What a model's entry in the Hugging Face cache holds, read from disk alone (no network): not downloaded,
partly there (bytes of the kept partials), ready (every planned file whole), damaged (a file of the wrong
size); and deleting that entry, only that entry. The Models panel and `main.py download` read this; a download
in another process shows here as its bytes grow.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from i2v.downloads import PLAN_FILE, DownloadError, Plan, blob_path, bytes_on_disk, cache_root, repo_entry

ABSENT, PARTIAL, READY, DAMAGED = "absent", "partial", "ready", "damaged"
ACTIVE_S = 5.0        # a partial written to within this long: a download is running (this process or another)


@dataclass(frozen=True)
class EntryState:
    repo_id: str
    state: str                  # absent | partial | ready | damaged
    done: int = 0               # bytes on disk of the planned files
    total: int = 0              # bytes of the planned files (0: no plan known yet)
    on_disk: int = 0            # bytes the whole cache entry takes
    damaged: tuple[str, ...] = ()
    snapshot: str | None = None
    active: bool = False        # a partial file is growing now


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def saved_plan(repo_id: str) -> Plan | None:
    path = repo_entry(repo_id) / PLAN_FILE
    try:
        return Plan.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def state_of(repo_id: str) -> EntryState:
    """The entry's state from its saved plan and the files' sizes (hashes are checked by a download)."""
    entry = repo_entry(repo_id)
    if not entry.is_dir():
        return EntryState(repo_id, ABSENT)
    on_disk = _du(entry)
    the_plan = saved_plan(repo_id)
    if the_plan is None:          # fetched by other tools: whole if a snapshot has a model_index.json
        snapshots = sorted((entry / "snapshots").glob("*/model_index.json"))
        if snapshots:
            return EntryState(repo_id, READY, on_disk, on_disk, on_disk, snapshot=str(snapshots[-1].parent))
        return EntryState(repo_id, PARTIAL if on_disk else ABSENT, on_disk, 0, on_disk)
    done = sum(bytes_on_disk(entry, f) for f in the_plan.files)
    newest = max((p.stat().st_mtime for p in (entry / "blobs").glob("*.incomplete")), default=0.0)
    active = time.time() - newest < ACTIVE_S
    damaged = tuple(f.path for f in the_plan.files
                    if blob_path(entry, f).is_file() and blob_path(entry, f).stat().st_size != f.size)
    snapshot = entry / "snapshots" / the_plan.commit
    linked = all((snapshot / f.path).exists() for f in the_plan.files)
    if damaged:
        state = DAMAGED
    elif linked and done == the_plan.total_bytes:
        state = READY
    else:
        state = PARTIAL if done else ABSENT
    return EntryState(repo_id, state, done, the_plan.total_bytes, on_disk, damaged,
                      str(snapshot) if state == READY else None, active and state == PARTIAL)


def delete(repo_id: str) -> int:
    """Remove the repo's cache entry (and its lock folder) and nothing else; returns the bytes freed.
    Refused when the entry is not a folder directly inside the cache named for this repo (a link, elsewhere)."""
    root = cache_root().resolve()
    entry = repo_entry(repo_id)
    if not entry.exists():
        return 0
    if entry.is_symlink() or not entry.is_dir() or entry.resolve().parent != root:
        raise DownloadError("download_delete_refused", path=str(entry), repo=repo_id)
    freed = _du(entry)
    shutil.rmtree(entry)
    locks = root / ".locks" / entry.name
    if locks.is_dir() and not locks.is_symlink():
        shutil.rmtree(locks)
    return freed
