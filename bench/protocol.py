"""Measurement protocols: ours (default) and the D2SM authors' (``--protocol authors``), recorded in every cell.

The authors' evaluation (their release's ``tools/quality_measure.py`` and validation code) differs from ours in
three places, each reproduced here: PSNR and SSIM after shaving 32 px from each side twice (64 px in all); the
test noise drawn after ``np.random.seed(0)`` for every image, so every image of one size gets the same noise
field; and, in the contextual loss, features centred by the target's mean over the batch and space
(``center_by_T``) instead of per image. Ours: no shave, noise fixed per (image id, sigma, seed), per-image centring.
"""
from __future__ import annotations

import numpy as np
import torch

PROTOCOLS = ("ours", "authors")
AUTHORS_SHAVE = 64  # pixels removed from each side before PSNR/SSIM: their tool shaves 32, twice


def shave(x: torch.Tensor, protocol: str) -> torch.Tensor:
    """(B, C, H, W) without the border the protocol ignores in PSNR/SSIM."""
    if protocol != "authors":
        return x
    h, w = x.shape[-2:]
    if h <= 2 * AUTHORS_SHAVE or w <= 2 * AUTHORS_SHAVE:
        from bench.base.errors import BenchError

        raise BenchError(f"--protocol authors shaves {AUTHORS_SHAVE} px from each side before PSNR/SSIM; "
                         f"{h}x{w} images leave nothing (it is meant for Cityscapes' 2048x1024)")
    return x[..., AUTHORS_SHAVE:h - AUTHORS_SHAVE, AUTHORS_SHAVE:w - AUTHORS_SHAVE]


def authors_noise(sigma: float, shape: tuple[int, int, int]) -> torch.Tensor:
    """The authors' test noise for an image of ``shape`` (C, H, W): ``np.random.seed(0)`` then a normal draw of
    std sigma/255 in their (H, W, C) layout; the same field for every image of that size."""
    c, h, w = shape
    np.random.seed(0)
    noise = np.random.normal(0.0, float(sigma) / 255.0, (h, w, c)).astype(np.float32)
    return torch.from_numpy(noise).permute(2, 0, 1).contiguous()
