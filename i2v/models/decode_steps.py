"""Decode progress shared by the families whose VAE runs its decoder several times per video (Wan: once per
latent frame; LTX: once; each spatial tile again when tiling): how many calls to expect, and a hook that counts
them for the progress listener and lets Stop end the decode between two calls. torch stays out of import."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


def spatial_tiles(vae, height: int, width: int) -> int:
    """How many spatial tiles vae.decode splits a latent of height x width into (1 without tiling)."""
    ratio = vae.spatial_compression_ratio
    tile_h, tile_w = vae.tile_sample_min_height // ratio, vae.tile_sample_min_width // ratio
    if not (vae.use_tiling and (width > tile_w or height > tile_h)):
        return 1
    stride_h, stride_w = vae.tile_sample_stride_height // ratio, vae.tile_sample_stride_width // ratio
    return len(range(0, height, stride_h)) * len(range(0, width, stride_w))


@contextmanager
def counted_decoder(vae, total: int, listener: Callable[[str, int, int], None] | None,
                    check: Callable[[], None] | None) -> Iterator[None]:
    """While inside: each vae.decoder call first runs `check` (Stop raises there) and reports ("decode", n, total)."""
    count = [0]

    def before_decoder(*_):
        if check is not None:
            check()
        count[0] += 1
        if listener is not None:
            listener("decode", count[0], total)

    handle = vae.decoder.register_forward_pre_hook(before_decoder)
    try:
        yield
    finally:
        handle.remove()
