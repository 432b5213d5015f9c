"""The files that belong to a video besides its sidecar, all beside the MP4 in outputs/ and deleted with it
(i2v.history): the input image it was made from (video_X.input.png, so History's Reuse restores it), and other
formats made on request from the MP4, once: an animated GIF and every frame as a PNG in one zip.

outputs/ is a folder others can write to, so a companion is reused only when it is one of ours
(files.is_own_file: a regular file, not a link, inside the video's folder). A link planted in its place is
removed (the link, never its target) and the companion made afresh; the video itself must be one of ours too,
else ValueError (nothing is read or written)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from i2v import files

EXPORTS = {"gif": ".gif", "frames": ".frames.zip"}     # kind -> the file's ending after the video's stem
INPUT_SUFFIX = ".input.png"
THUMB_SUFFIX = ".thumb.jpg"
THUMB_SIZE = 256               # the long side of History's thumbnails, in pixels


def export_path(video_path: Path, kind: str) -> Path:
    return Path(video_path).with_name(Path(video_path).stem + EXPORTS[kind])


def input_path(video_path: Path) -> Path:
    return Path(video_path).with_name(Path(video_path).stem + INPUT_SUFFIX)


def companion_paths(video_path: Path) -> list[Path]:
    """Every file beside the MP4 that goes with it (not the sidecar: i2v.video owns that)."""
    return [input_path(video_path), thumb_path(video_path), *(export_path(video_path, kind) for kind in EXPORTS)]


def thumb_path(video_path: Path) -> Path:
    return Path(video_path).with_name(Path(video_path).stem + THUMB_SUFFIX)


def own_video(video_path: Path) -> Path:
    """The video, if it is a regular file (not a link) in its folder; else ValueError."""
    video_path = Path(video_path)
    if not files.is_own_file(video_path, video_path.parent):
        raise ValueError(f"{video_path.name} is not a regular file of this app")
    return video_path


def reusable(target: Path, video_path: Path) -> bool:
    """A companion made before is served again only if it is ours and not older than its video; a link in its
    place is removed here (the link itself), so it is made afresh."""
    files.remove_link(target)
    try:
        return (files.is_own_file(target, Path(video_path).parent)
                and target.stat().st_mtime >= Path(video_path).stat().st_mtime)
    except OSError:
        return False


def thumbnail(video_path: Path) -> Path:
    """History's picture of a video: its first frame, small, made once."""
    import imageio_ffmpeg
    import numpy as np
    from PIL import Image

    video_path = own_video(video_path)
    target = thumb_path(video_path)
    if reusable(target, video_path):
        return target
    reader = imageio_ffmpeg.read_frames(str(video_path))
    try:
        width, height = next(reader)["size"]
        first = Image.fromarray(np.frombuffer(next(reader), dtype=np.uint8).reshape(height, width, 3))
    finally:
        reader.close()
    first.thumbnail((THUMB_SIZE, THUMB_SIZE))
    return files.write_file_atomic(target, lambda tmp: first.save(tmp, format="JPEG", quality=85))


def save_input(image, video_path: Path) -> Path:
    """Keep the (converted, RGB) input image beside its video, written whole (a link in its place is replaced,
    never followed)."""
    files.remove_link(input_path(video_path))
    return files.write_file_atomic(input_path(video_path), lambda tmp: image.save(tmp, format="PNG"))


def read_frames(video_path: Path):
    """(frames as PIL images, fps) decoded from the MP4 by imageio-ffmpeg."""
    import imageio_ffmpeg
    import numpy as np
    from PIL import Image

    reader = imageio_ffmpeg.read_frames(str(video_path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [Image.fromarray(np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)) for raw in reader]
    return frames, float(meta.get("fps") or 8)


def export(video_path: Path, kind: str) -> Path:
    """The video as `kind` ("gif" or "frames"), written whole beside it on first request and reused after."""
    video_path = own_video(video_path)
    target = export_path(video_path, kind)
    if reusable(target, video_path):
        return target
    frames, fps = read_frames(video_path)
    if kind == "gif":
        def fill(tmp: Path) -> None:
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                           duration=max(20, round(1000 / fps)), loop=0)
    else:
        def fill(tmp: Path) -> None:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
                for index, frame in enumerate(frames, start=1):
                    png = io.BytesIO()
                    frame.save(png, format="PNG")
                    archive.writestr(f"frame_{index:04d}.png", png.getvalue())
    return files.write_file_atomic(target, fill)
