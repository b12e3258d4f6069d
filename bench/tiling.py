"""Restoration within bounded memory: a batch size from the image size, and tiled restoration with overlap.

Restoration networks are local (their receptive field is finite), so restoring overlapping tiles and keeping
each tile's centre gives the whole-image result wherever the overlap covers the receptive field; tiles start on
multiples of ``align`` so that networks that downsample (U-Nets, FFDNet's 2x2 shuffle) see the same grid.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

EVAL_PIXELS = 1 << 21  # pixels per restoration batch by default: 8 images of 128x256, 1 of 2048x1024


def auto_batch(height: int, width: int, pixels: int = EVAL_PIXELS, most: int = 8) -> int:
    """Images per restoration batch for ``height`` x ``width`` images (at least 1, at most ``most``)."""
    return max(1, min(most, pixels // max(1, height * width)))


def restore_tiled(restore: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noisy: torch.Tensor,
                  sigma: torch.Tensor, tile: int, overlap: int = 64, align: int = 8) -> torch.Tensor:
    """``restore(noisy, sigma)`` computed tile by tile: (B, 3, H, W) -> (B, 3, H, W).

    Each output pixel comes from the tile in which it lies at least ``overlap`` px from a cut edge (the image's
    own border is no cut). ``tile`` and ``overlap`` are rounded up to multiples of ``align``."""
    b, _, h, w = noisy.shape
    step = -(-tile // align) * align
    pad = -(-overlap // align) * align
    if h <= step and w <= step:
        return restore(noisy, sigma)
    out = torch.empty_like(noisy)
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            y1, x1 = min(y0 + step, h), min(x0 + step, w)
            ty0, tx0 = max(0, y0 - pad), max(0, x0 - pad)
            ty1, tx1 = min(h, y1 + pad), min(w, x1 + pad)
            level = sigma if sigma.dim() == 1 else sigma[..., ty0:ty1, tx0:tx1]  # a per-pixel map is tiled too
            part = restore(noisy[..., ty0:ty1, tx0:tx1], level)
            out[..., y0:y1, x0:x1] = part[..., y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0]
    return out
