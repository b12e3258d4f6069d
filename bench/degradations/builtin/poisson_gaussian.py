"""Signal-dependent sensor noise: shot (Poisson) plus read (Gaussian) noise, in the heteroscedastic Gaussian form
of Foi et al. (IEEE TIP 2008): noisy = x + sqrt(shot * x + read) * n, n ~ N(0, 1), x the clean intensity in [0, 1].

Level: the noise std at mid-grey (x = 0.5) on the 0-255 scale, so that level 25 is as strong at mid-grey as
Gaussian sigma 25. The level is split into shot and read noise by the relation Brooks et al. ("Unprocessing
images for learned raw denoising", CVPR 2019) fitted to real sensors: log(read) = ``read_slope`` * log(shot) +
``read_offset`` (2.18 and 1.20; their random jitter left out, so a level is one noise model). Dark pixels are less
noisy than bright ones; the noise-map backbone receives the per-pixel std estimated from the noisy image.
"""
from __future__ import annotations

import math

import torch

from bench.degradations.registry import Degradation, register_degradation


def shot_read(level: torch.Tensor, slope: float, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(shot, read) variances (float64, same shape as ``level``, 0-1 scale) whose std at x = 0.5 is ``level``
    (0-1 scale): 0.5 shot + e^offset shot^slope = level^2, solved by bisection (monotone in shot)."""
    target = level.double() ** 2
    lo, hi = torch.zeros_like(target), torch.full_like(target, 4.0)
    for _ in range(80):
        mid = (lo + hi) / 2
        too_big = 0.5 * mid + math.exp(offset) * mid ** slope > target
        hi, lo = torch.where(too_big, mid, hi), torch.where(too_big, lo, mid)
    shot = (lo + hi) / 2
    return shot, math.exp(offset) * shot ** slope


@register_degradation("poisson_gaussian", "shot + read sensor noise (Foi 2008), split as on real sensors (Brooks "
                      "2019); level = std at mid-grey", order=20)
class PoissonGaussian(Degradation):
    def __init__(self, read_slope: float = 2.18, read_offset: float = 1.20) -> None:
        if not (math.isfinite(read_slope) and read_slope > 0 and math.isfinite(read_offset)):
            from bench.base.errors import BenchError

            raise BenchError(f"degradation poisson_gaussian: read_slope must be a finite number > 0 and read_offset "
                             f"finite (got {read_slope}, {read_offset}): log(read) = slope log(shot) + offset")
        self.read_slope, self.read_offset = float(read_slope), float(read_offset)

    def _apply(self, clean: torch.Tensor, level: torch.Tensor, normal: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """clean (B, 3, H, W), level (B,) on the 0-1 scale, normal draws like clean -> (noisy, (B, 1, H, W) map)."""
        shot, read = (v.view(-1, 1, 1, 1) for v in shot_read(level, self.read_slope, self.read_offset))
        x = clean.double().clamp(0, 1)
        noisy = (x + torch.sqrt(shot * x + read) * normal.double()).to(clean.dtype)
        estimate = noisy.double().clamp(0, 1).mean(1, keepdim=True)  # what the noisy image tells of the intensity
        return noisy, torch.sqrt(shot * estimate + read).to(clean.dtype)

    def draw_train(self, clean, level, gen, exact=False):
        normal = torch.randn(clean.shape, generator=gen, device=gen.device).to(clean.device)
        return self._apply(clean, level.to(clean.device), normal)

    def draw_test(self, clean, level, gen):
        noisy, noise_map = self._apply(clean[None], torch.tensor([float(level) / 255.0]),
                                       torch.randn(clean.shape, generator=gen)[None])
        return noisy[0], noise_map[0]
