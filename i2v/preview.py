"""Live preview: the current latents as a small RGB strip, without the VAE.

A linear map of the latent channels to RGB plus a bias, as A1111's "approx cheap" and ComfyUI's latent
previewers do (the factors are each family's: Family.preview_rgb()). A few frames, picked evenly, side by side
at PREVIEW_HEIGHT px, JPEG-encoded: small enough for the worker's pipe every few steps. torch inside functions.
"""
from __future__ import annotations

DEFAULT_EVERY = 4          # a preview every 4 denoising steps on the page (0 = off)
MAX_FRAMES = 4             # frames in the strip
PREVIEW_HEIGHT = 128       # px of each frame in the strip (the longer side is at most 2x this)
JPEG_QUALITY = 80


def project(latents, factors, bias=None):
    """[frames, channels, h, w] latents -> uint8 [frames, h, w, 3] (numpy): RGB = latents . factors + bias,
    mapped from [-1, 1] to [0, 255] (ComfyUI's Latent2RGB convention)."""
    import torch

    with torch.no_grad():
        x = latents.detach().to(torch.float32)
        frames, channels, height, width = x.shape
        weights = torch.tensor(factors, dtype=torch.float32, device=x.device)          # [channels, 3]
        if weights.shape[0] != channels:
            raise ValueError(f"{weights.shape[0]} preview factors for {channels} latent channels")
        rgb = torch.matmul(weights.t(), x.reshape(frames, channels, height * width))   # [frames, 3, h*w]
        if bias is not None:
            rgb += torch.tensor(bias, dtype=torch.float32, device=x.device)[:, None]
        rgb = rgb.clamp_(-1.0, 1.0).add_(1.0).mul_(127.5).round_().to(torch.uint8)
        return rgb.reshape(frames, 3, height, width).permute(0, 2, 3, 1).cpu().numpy()


def pick_frames(count: int, most: int = MAX_FRAMES) -> list[int]:
    """Up to `most` frame indices spread evenly from the first to the last."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def strip(frames, height: int = PREVIEW_HEIGHT):
    """uint8 [frames, h, w, 3] -> one PIL image: the frames side by side, each scaled to `height` px tall (at
    most 2x as wide)."""
    import numpy as np
    from PIL import Image

    count, h, w = frames.shape[:3]
    width = max(1, min(2 * height, round(w * height / max(h, 1))))
    images = [Image.fromarray(np.ascontiguousarray(frame)).resize((width, height), Image.BILINEAR)
              for frame in frames]
    out = Image.new("RGB", (width * count, height))
    for index, image in enumerate(images):
        out.paste(image, (index * width, 0))
    return out


def encode(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def decode(data: bytes):
    """The page's side: the bytes back into a PIL image."""
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")


def render(latents, factors, bias=None) -> bytes:
    """[frames, channels, h, w] latents -> the JPEG strip the worker sends (frames picked before projecting).

    On the CPU its few small ops run on one thread: on a loaded machine torch's thread pool made them ~10x
    slower than the work itself (bench/results/preview_cost.md); the pool's size is restored after."""
    import torch

    threads = torch.get_num_threads() if latents.device.type == "cpu" else 1
    if threads > 1:
        torch.set_num_threads(1)
    try:
        index = torch.tensor(pick_frames(int(latents.shape[0])), device=latents.device)
        rgb = project(latents.index_select(0, index), factors, bias)
    finally:
        if threads > 1:
            torch.set_num_threads(threads)
    return encode(strip(rgb))


def frames_first(latents):
    """A denoiser's [batch, channels, frames, h, w] input -> the first sample as [frames, channels, h, w]."""
    return latents[0].permute(1, 0, 2, 3)
