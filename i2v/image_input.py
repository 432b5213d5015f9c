"""The input image, opened and checked in our own code (never in a UI component's preprocessing), so every
broken file gets a message naming the field in the user's language.

Refused: no file, an empty or oversized file, a file that is not an image, an image above the megapixel
limit (read from the header, *before* decoding: a decompression bomb never expands), a truncated or damaged
image. Converted and reported: animated images (first frame), CMYK, 16-bit, palette and alpha images (alpha
is flattened on white).
"""
from __future__ import annotations

import base64
import binascii
import io
import os
import re
from pathlib import Path

from i2v.core.errors import I2VError
from i2v.core.request import RequestError
from i2v.core.settings import IMAGE_FIELD, MAX_IMAGE_MEGAPIXELS, MAX_UPLOAD_MIB
from i2v.core.units import MIB

BACKGROUND = (255, 255, 255)        # transparent pixels become white


def upload_limit_mib() -> int:
    """The upload limit: I2V_MAX_UPLOAD_MIB (set by --max-upload-mib) or the documented default."""
    from i2v.core import env

    raw = env.value("I2V_MAX_UPLOAD_MIB", os.environ).strip()
    try:
        value = float(raw) if raw else float(MAX_UPLOAD_MIB)
    except ValueError:
        value = float(MAX_UPLOAD_MIB)
    return max(1, int(value)) if value == value else MAX_UPLOAD_MIB


def _refuse(key: str, **params) -> RequestError:
    return RequestError(key, field=IMAGE_FIELD, **params)


def _read_source(source) -> tuple[io.BytesIO | str, int]:
    """(what PIL opens, its size in bytes) for a path or a data: URL; refusals for missing or empty files."""
    if source is None or (isinstance(source, str) and not source.strip()):
        raise _refuse("image_missing")
    if isinstance(source, str) and source.startswith("data:"):
        header, _, payload = source.partition(",")
        if len(payload) > upload_limit_mib() * MIB * 4 // 3 + 4:
            raise _refuse("image_file_too_big", size_mib=len(payload) * 3 // 4 // MIB, limit_mib=upload_limit_mib())
        try:
            data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else payload.encode()
        except (binascii.Error, ValueError):
            raise _refuse("image_not_image") from None
        return io.BytesIO(data), len(data)
    path = Path(source)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise _refuse("image_not_found", name=path.name) from None
    except OSError:
        raise _refuse("image_not_image") from None
    if not path.is_file():
        raise _refuse("image_not_image")
    return str(path), size


def open_image(source) -> tuple["object", list[I2VError]]:
    """(RGB PIL image, notes about conversions) for a file path or data: URL; RequestError when refused."""
    from PIL import Image, UnidentifiedImageError

    opened, size = _read_source(source)
    if size == 0:
        raise _refuse("image_empty")
    if size > upload_limit_mib() * MIB:
        raise _refuse("image_file_too_big", size_mib=size // MIB, limit_mib=upload_limit_mib())
    try:
        image = Image.open(opened)
    except Image.DecompressionBombError as bomb:   # Pillow refuses at open; its message holds the pixel count
        counted = re.search(r"\((\d+) pixels\)", str(bomb))
        megapixels = round(int(counted.group(1)) / 1e6, 1) if counted else f"> {MAX_IMAGE_MEGAPIXELS}"
        raise _refuse("image_too_many_pixels_count", megapixels=megapixels, limit=MAX_IMAGE_MEGAPIXELS) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise _refuse("image_not_image") from None
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise _refuse("image_damaged")
        if width * height > MAX_IMAGE_MEGAPIXELS * 1_000_000:
            raise _refuse("image_too_many_pixels", width=width, height=height,
                          megapixels=round(width * height / 1e6, 1), limit=MAX_IMAGE_MEGAPIXELS)
        notes = []
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
            notes.append(I2VError("image_first_frame", field=IMAGE_FIELD))
        try:
            image.load()
            rgb = _to_rgb(image, notes)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise _refuse("image_damaged") from None
    return rgb, notes


def _to_rgb(image, notes: list[I2VError]):
    """RGB from any mode: 16-bit and float scaled to 8 bits, alpha flattened on white, CMYK and palettes
    converted; each conversion a note."""
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
        gray = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), "L")
        notes.append(I2VError("image_converted", field=IMAGE_FIELD, what=f"{mode} (16-bit/float)"))
        return gray.convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        notes.append(I2VError("image_converted", field=IMAGE_FIELD, what=f"{mode} (transparency on white)"))
        return flat
    notes.append(I2VError("image_converted", field=IMAGE_FIELD, what=mode))
    return image.convert("RGB")


def header_size(source) -> tuple[int, int] | None:
    """(width, height) from the file's header alone, or None: for estimates while the user edits the form."""
    from PIL import Image

    try:
        opened, size = _read_source(source)
        if not size or size > upload_limit_mib() * MIB:
            return None
        with Image.open(opened) as image:
            return image.size
    except Exception:  # noqa: BLE001 - an unreadable file just has no size yet; generate names the problem
        return None
