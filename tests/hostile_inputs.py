"""The hostile-input matrix shared by the API, CLI and page tests: broken files and values, each with what the
app must answer — a message naming the field, or a valid result (with the conversion reported)."""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

GOOD_VALUES = dict(prompt="a calm lake", negative_prompt="", resolution=256, num_frames=3, fps=8,
                   num_inference_steps=1, guidance_scale=7.5, seed=1)


@dataclass(frozen=True)
class Case:
    name: str
    image: str = "good"                      # a key of IMAGES
    values: dict = field(default_factory=dict)
    error_label: str | None = None           # the field label the message must name; None: must succeed
    note: str | None = None                  # for successes: a word the reported conversion must contain


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A small file whose header declares a huge image (a decompression bomb): never to be decoded."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 16)       # a few rows: the file is tiny, the header is not
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def image_bytes() -> dict[str, tuple[str, bytes]]:
    """name -> (file suffix, content)."""
    rgb = Image.new("RGB", (320, 240), (40, 120, 200))
    good = _encode(rgb, "PNG")
    frames = [Image.new("RGB", (64, 48), c) for c in ((255, 0, 0), (0, 255, 0))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    palette = Image.new("P", (80, 60), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    return {
        "good": (".png", good),
        "text": (".png", b"this is not an image at all"),
        "empty": (".png", b""),
        "truncated": (".png", good[: len(good) // 2]),
        "bomb": (".png", bomb_png()),
        "svg": (".svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
        "animated": (".gif", gif.getvalue()),
        "cmyk": (".jpg", _encode(Image.new("CMYK", (96, 64), (10, 200, 30, 0)), "JPEG")),
        "sixteen_bit": (".png", _encode(Image.new("I;16", (96, 64), 40000), "PNG")),
        "alpha": (".png", _encode(Image.new("RGBA", (96, 64), (200, 10, 10, 100)), "PNG")),
        "palette_alpha": (".png", _encode(palette, "PNG", transparency=0)),
        "grayscale": (".png", _encode(Image.new("L", (96, 64), 128), "PNG")),
        "tiny": (".png", _encode(Image.new("RGB", (1, 1), (1, 2, 3)), "PNG")),
        "panorama": (".png", _encode(Image.new("RGB", (2400, 600), (9, 9, 9)), "PNG")),
    }


def write_images(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (suffix, content) in image_bytes().items():
        path = folder / f"{name}{suffix}"
        path.write_bytes(content)
        paths[name] = path
    return paths


IMAGE = "Input image"
CASES: tuple[Case, ...] = (
    Case("not an image", image="text", error_label=IMAGE),
    Case("empty file", image="empty", error_label=IMAGE),
    Case("truncated png", image="truncated", error_label=IMAGE),
    Case("decompression bomb", image="bomb", error_label=IMAGE),
    Case("svg", image="svg", error_label=IMAGE),
    Case("animated gif", image="animated", note="first frame"),
    Case("cmyk jpeg", image="cmyk", note="CMYK"),
    Case("16-bit png", image="sixteen_bit", note="16-bit"),
    Case("alpha png", image="alpha", note="transparency"),
    Case("palette with transparency", image="palette_alpha", note="transparency"),
    Case("grayscale", image="grayscale", note="converted"),
    Case("1x1 image", image="tiny"),
    Case("panorama", image="panorama"),
    Case("frames NaN", values={"num_frames": float("nan")}, error_label="Frames"),
    Case("guidance Infinity", values={"guidance_scale": float("inf")}, error_label="Guidance scale"),
    Case("fps as text", values={"fps": "fast"}, error_label="FPS"),
    Case("frames as numeric text", values={"num_frames": "3"}),
    Case("frames fractional", values={"num_frames": 2.5}, error_label="Frames"),
    Case("frames negative", values={"num_frames": -4}, error_label="Frames"),
    Case("steps huge", values={"num_inference_steps": 10**12}, error_label="Steps"),
    Case("resolution not offered", values={"resolution": 300}, error_label="Resolution"),
    Case("resolution as text", values={"resolution": "256"}),
    Case("seed too big", values={"seed": 2**40}, error_label="Seed"),
    Case("empty prompt", values={"prompt": "   "}, error_label="Prompt"),
    Case("huge prompt", values={"prompt": "a" * 50_000}, error_label="Prompt"),
    Case("huge negative prompt", values={"negative_prompt": "b" * 5000}, error_label="Negative prompt"),
    Case("control characters in prompt", values={"prompt": "a\x00 cat\x1b[2J\u202e"}),
    Case("emoji and right-to-left prompt", values={"prompt": "🐈 قطة تمشي"}),
    Case("lone surrogate in prompt", values={"prompt": "a \ud800 cat"}, error_label="Prompt"),
    Case("object as prompt", values={"prompt": {"a": 1}}, error_label="Prompt"),
    Case("list as negative prompt", values={"negative_prompt": ["x"]}, error_label="Negative prompt"),
)
