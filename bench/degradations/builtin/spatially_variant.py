"""Spatially variant Gaussian noise: the std varies smoothly over the image, as with vignetting, uneven
exposure or local gain. Per image, four corner factors ~ U(``low``, ``high``) are interpolated bilinearly over the
image; the std at a pixel is level/255 times its factor (level: the std of a factor-1 pixel, on the 0-255 scale).
The noise-map backbone receives the per-pixel std map (known, as FFDNet's paper assumes for non-uniform noise)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.degradations.registry import Degradation, register_degradation


@register_degradation("spatially_variant", "Gaussian noise whose std varies smoothly over the image (bilinear from "
                      "corner factors in [low, high]); level = std of factor 1", order=30)
class SpatiallyVariant(Degradation):
    def __init__(self, low: float = 0.5, high: float = 1.5) -> None:
        if not 0 <= low <= high:
            from bench.base.errors import BenchError

            raise BenchError(f"degradation spatially_variant: need 0 <= low <= high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def _field(self, corners: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, 2, 2) uniform draws in [0, 1) -> (B, 1, H, W) factors in [low, high]."""
        factors = self.low + (self.high - self.low) * corners
        return F.interpolate(factors[:, None], size=size, mode="bilinear", align_corners=True)

    def draw_train(self, clean, level, gen, exact=False):
        b, _, h, w = clean.shape
        corners = torch.rand((b, 2, 2), generator=gen, device=gen.device)
        normal = torch.randn(clean.shape, generator=gen, device=gen.device)
        std = (self._field(corners, (h, w)) * level.view(-1, 1, 1, 1).to(corners.device)).to(clean.device)
        return clean + normal.to(clean.device) * std, std

    def draw_test(self, clean, level, gen):
        corners = torch.rand((1, 2, 2), generator=gen)
        std = self._field(corners, tuple(clean.shape[-2:]))[0] * (float(level) / 255.0)
        return clean + torch.randn(clean.shape, generator=gen) * std, std
