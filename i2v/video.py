"""Frames to MP4 (H.264, yuv420p) and JSON sidecars, written atomically without ever overwriting; probing."""
from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from i2v import files
from i2v.core.request import RequestError
from i2v.core.units import MIB

log = logging.getLogger(__name__)

VIDEO_PREFIX = "video"
VIDEO_SUFFIX = ".mp4"
SIDECAR_SUFFIX = ".json"
PARTIAL_PREFIX = ".partial-"   # temp files live next to the target and start with this
X264_QUALITY = 8               # imageio-ffmpeg quality (0-10), maps to a libx264 CRF


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str


def timestamp_stem(now: datetime | None = None) -> str:
    return f"{VIDEO_PREFIX}_{(now or datetime.now()).strftime('%Y%m%d_%H%M%S')}"


def _encode_mp4(frames, fps: float, path: Path) -> None:
    import imageio_ffmpeg

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0 or str(frames.dtype) != "uint8":
        raise ValueError(f"expected uint8 frames of shape (F, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    count, height, width = frames.shape[0], frames.shape[1], frames.shape[2]
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        quality=X264_QUALITY, macro_block_size=2, output_params=["-movflags", "+faststart"],
    )
    writer.send(None)
    try:
        for index in range(count):
            writer.send(frames[index].tobytes())
    finally:
        writer.close()


def _link_without_overwrite(tmp: Path, candidates) -> Path:
    """Give tmp the first free name from candidates atomically (a hard link fails if the name exists)."""
    for candidate in candidates:
        try:
            os.link(tmp, candidate)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError("no free output name")


def _candidates(directory: Path, stem: str, suffix: str):
    yield directory / f"{stem}{suffix}"
    for n in range(1, 10_000):
        yield directory / f"{stem}_{n}{suffix}"


class OutputNotWritten(RequestError):
    """The video or its sidecar could not be written (disk full, folder not writable); nothing was left."""


def free_mib(directory: Path) -> int:
    try:
        return int(shutil.disk_usage(directory).free // MIB)
    except OSError:
        return 0


def output_error(directory: Path, exc: BaseException) -> OutputNotWritten:
    """The user's message for a failed write: disk space (with the free MiB) or the folder's permissions."""
    log.error("writing to %s failed: %r", directory, exc)
    if isinstance(exc, PermissionError):
        return OutputNotWritten("outputs_not_writable", folder=directory.name)
    return OutputNotWritten("disk_full", folder=directory.name, free_mib=free_mib(directory))


def _check_encoded(path: Path, expected_frames: int) -> None:
    """The writer's result, checked: a file ffmpeg cut short (disk full) does not decode to every frame."""
    try:
        frames = probe_video(path).frames if path.stat().st_size else 0
    except Exception as exc:  # noqa: BLE001 - any decode failure means the file is not whole
        raise OSError(errno.EIO, f"the encoded video does not decode: {exc}") from exc
    if frames != expected_frames:
        raise OSError(errno.EIO, f"the encoded video has {frames} of {expected_frames} frames")


def write_video(frames, fps: float, out_dir: Path | None = None, out_path: Path | None = None,
                sidecar=None) -> Path:
    """Encode frames (F, H, W, 3 uint8) to a new MP4 and return its path; with sidecar (path -> dict), its JSON
    sidecar too (if that cannot be written, the video is removed: an output is whole or absent).

    Default name: out_dir/video_YYYYMMDD_HHMMSS[_N].mp4. With out_path, that exact name (refused if it exists).
    The file appears complete or not at all: encoded to a hidden temp file, checked to decode to every frame,
    then hard-linked into place. A failed write (disk full) raises OutputNotWritten and leaves nothing.
    """
    def encode(tmp: Path) -> None:
        _encode_mp4(frames, fps, tmp)
        _check_encoded(tmp, frames.shape[0])

    return _with_sidecar(_write_whole(encode, out_dir, out_path), sidecar)


def _with_sidecar(path: Path, sidecar) -> Path:
    if sidecar is not None:
        write_sidecar_or_discard(path, sidecar(path))
    return path


def store_video(data: bytes, frames: int, out_dir: Path | None = None, out_path: Path | None = None,
                sidecar=None) -> Path:
    """An MP4 made elsewhere (a remote worker's bytes) stored like write_video's: checked to decode to every
    frame, whole or absent, never overwriting."""
    def copy(tmp: Path) -> None:
        tmp.write_bytes(data)
        _check_encoded(tmp, frames)

    return _with_sidecar(_write_whole(copy, out_dir, out_path), sidecar)


def _write_whole(fill, out_dir: Path | None, out_path: Path | None) -> Path:
    directory = (out_path.parent if out_path else out_dir).resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=partial_prefix(), suffix=VIDEO_SUFFIX, dir=directory)
        os.close(fd)
    except OSError as exc:
        raise output_error(directory, exc) from None
    tmp = Path(tmp_name)
    try:
        try:
            fill(tmp)
            os.chmod(tmp, files.readable_mode())
        except (OSError, RuntimeError) as exc:      # imageio-ffmpeg raises both when ffmpeg fails to write
            raise output_error(directory, exc) from None
        names = [out_path.resolve()] if out_path else _candidates(directory, timestamp_stem(), VIDEO_SUFFIX)
        return _link_without_overwrite(tmp, names)
    finally:
        tmp.unlink(missing_ok=True)


def write_sidecar_or_discard(video_path: Path, data: dict) -> Path:
    """Write the video's sidecar; if that fails, remove the video too, so an output is whole or absent."""
    try:
        return files.write_json_atomic(sidecar_path(video_path), data, prefix=partial_prefix())
    except OSError as exc:
        Path(video_path).unlink(missing_ok=True)
        raise output_error(Path(video_path).parent, exc) from None


def sidecar_path(video_path: Path) -> Path:
    return video_path.with_suffix(SIDECAR_SUFFIX)


def partial_prefix() -> str:
    """Temp files carry their writer's PID, so only files no live process can own are ever cleaned."""
    return f"{PARTIAL_PREFIX}{os.getpid()}-"


def _writer_alive(path: Path) -> bool:
    import psutil

    pid_text = path.name[len(PARTIAL_PREFIX):].split("-", 1)[0]
    if not pid_text.isdigit():
        return False                                  # an older name without a PID: nobody claims it
    pid = int(pid_text)
    return pid != os.getpid() and psutil.pid_exists(pid)


def remove_partials(directory: Path) -> list[Path]:
    """Delete temp files that writers which are gone left behind (a live instance's files are kept)."""
    removed = []
    if directory.is_dir():
        for path in directory.glob(f"{PARTIAL_PREFIX}*"):
            if _writer_alive(path):
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def probe_video(path: Path) -> VideoInfo:
    """Read the real stream properties of an MP4 (frame count decoded, not taken from metadata)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    count = sum(1 for _ in reader)
    width, height = meta["size"]
    codec = str(meta.get("codec", ""))
    pix_fmt = str(meta.get("pix_fmt", ""))
    return VideoInfo(frames=count, width=width, height=height, fps=float(meta["fps"]), codec=codec, pix_fmt=pix_fmt)
