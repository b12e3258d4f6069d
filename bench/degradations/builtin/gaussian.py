"""Additive white Gaussian noise, the paper's: level = sigma on the 0-255 scale, no clipping."""
from __future__ import annotations

import torch

from bench.base.noise import add_train_noise
from bench.degradations.registry import Degradation, register_degradation


@register_degradation("gaussian", "additive white Gaussian noise of std level/255, not clipped (the paper's)",
                      order=10)
class Gaussian(Degradation):
    exact = True

    def draw_train(self, clean: torch.Tensor, level: torch.Tensor, gen: torch.Generator, exact: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Exactly ``bench.base.noise.add_train_noise`` (cells trained before degradations were a registry keep their
        bits); the map is the per-image sigma."""
        return add_train_noise(clean, level, gen, exact=exact), level

    def draw_test(self, clean: torch.Tensor, level: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(clean.shape, generator=gen) * (float(level) / 255.0)  # = bench.base.noise.eval_noise
        return clean + noise, torch.tensor(float(level) / 255.0)
