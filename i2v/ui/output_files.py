"""Deleting an output for the page: the video and its sidecar (inside outputs/ only, i2v.history) and Gradio's
cached copy of the video, so a deleted video is gone from every URL the page handed out."""
from __future__ import annotations

import contextlib
from pathlib import Path


def delete_output(outputs_dir: Path, path: str | Path) -> list[Path]:
    """Delete an output and its sidecar (i2v.history: inside outputs/ only), and Gradio's cached copy of the
    video, so a deleted video is gone from every URL the page handed out."""
    from gradio import utils

    from i2v import files, history

    target = history.resolve_output(outputs_dir, path)
    cached = gradio_cached_copy(target) if files.is_own_file(target, outputs_dir) else None
    removed = history.delete_output(outputs_dir, target)
    if cached is not None and files.remove_own(cached, utils.get_upload_folder()):   # never a link's target
        with contextlib.suppress(OSError):     # the hash folder holds only copies of this one file
            cached.parent.rmdir()
    return removed


def gradio_cached_copy(video_path: Path) -> Path | None:
    """Where Gradio keeps its copy of an output it served: <cache>/<content hash>/<name> (the scheme of
    gradio.processing_utils.save_file_to_cache); None when it is not there or would lie outside the cache."""
    from gradio import processing_utils, utils
    from gradio_client import utils as client_utils

    from i2v import files

    cache = Path(utils.get_upload_folder()).resolve()
    copy = (cache / processing_utils.hash_file(video_path)
            / client_utils.strip_invalid_filename_characters(video_path.name))    # not resolved: a link stays one
    return copy if files.is_own_file(copy, cache) else None
