"""The input image as the pipeline gets it: an image wider (or taller) than a video can be is cropped by the
pipeline or padded here, and a note (an I2VError, worded by the catalogue) says which."""
from __future__ import annotations

from pathlib import Path

from i2v.core.errors import I2VError
from i2v.core.settings import IMAGE_FIELD, MAX_ASPECT_RATIO


def too_wide(image_size: tuple[int, int]) -> bool:
    """Whether the image is wider (or taller) than a video can be (MAX_ASPECT_RATIO), so its aspect changes."""
    width, height = image_size
    return min(width, height) > 0 and max(width, height) / min(width, height) > MAX_ASPECT_RATIO + 0.01


def fit_image(image, request):
    """The image as the pipeline gets it, and the note saying what happened to its aspect: "crop" leaves it
    to the pipeline, which center-crops the sides; "pad" letterboxes it to the video's size (PIL ImageOps.pad,
    black bars), so nothing of it is cut."""
    if not too_wide(image.size):
        return image, []
    key = "image_padded" if request.image_fit == "pad" else "image_cropped"
    note = I2VError(key, field=IMAGE_FIELD, width=image.width, height=image.height,
                    video_width=request.width, video_height=request.height, ratio=f"{MAX_ASPECT_RATIO:g}")
    if request.image_fit == "pad":
        from PIL import ImageOps

        image = ImageOps.pad(image, (request.width, request.height), color=(0, 0, 0))
    return image, [note]


def load_image(path: str | Path):
    """Open an input image file as RGB (i2v.image_input: checked, converted); RequestError naming the field."""
    from i2v.image_input import open_image

    return open_image(str(path))[0]
