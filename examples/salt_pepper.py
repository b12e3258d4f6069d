"""A user's degradation: Gaussian noise plus impulse ("salt and pepper") noise, as dead or hot sensor pixels and
transmission errors give. Registered when imported (``plugins = ["salt_pepper.py"]``); a grid names it in
``[train] degradation`` or ``test_degradation``.

Level (0-255 scale): the Gaussian sigma, as for ``gaussian``; on top, a fraction ``fraction`` of the pixels (all
three channels) is set to 0 or 1 with equal odds. The noise-map backbone receives the Gaussian sigma.
"""
from __future__ import annotations

import torch

from bench.degradations import Degradation, register_degradation


@register_degradation("salt_pepper", "Gaussian noise of std level/255 plus impulse noise on a fraction of the pixels")
class SaltPepper(Degradation):
    def __init__(self, fraction: float = 0.02) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"salt_pepper: fraction must be in [0, 1], not {fraction}")
        self.fraction = float(fraction)

    def _impulses(self, noisy: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """noisy (B, 3, H, W); u (B, 1, H, W) uniform draws: below fraction/2 pepper, above 1 - fraction/2 salt."""
        out = torch.where(u < self.fraction / 2, torch.zeros_like(noisy), noisy)
        return torch.where(u >= 1 - self.fraction / 2, torch.ones_like(noisy), out)

    def draw_train(self, clean, level, gen, exact=False):
        b, _, h, w = clean.shape
        normal = torch.randn(clean.shape, generator=gen, device=gen.device).to(clean.device)
        u = torch.rand((b, 1, h, w), generator=gen, device=gen.device).to(clean.device)
        return self._impulses(clean + normal * level.view(-1, 1, 1, 1).to(clean.device), u), level

    def draw_test(self, clean, level, gen):
        noisy = clean + torch.randn(clean.shape, generator=gen) * (float(level) / 255.0)
        u = torch.rand((1, 1, *clean.shape[-2:]), generator=gen)
        return self._impulses(noisy[None], u)[0], torch.tensor(float(level) / 255.0)
