"""A user's backbone: DnCNN (Zhang et al., 2017), residual learning, blind to sigma.

Nothing in the package is edited: this file registers the backbone when it is imported (by the grid
file's ``plugins``, ``--plugin examples/dncnn.py`` or an entry point).
"""
from __future__ import annotations

import torch
from torch import nn

from models.base import Denoiser
from models.registry import register_backbone


@register_backbone("dncnn", "DnCNN (17 convs, 64 channels), predicts the noise", depth=17, width=64)
@register_backbone("dncnn_small", "DnCNN reduced for the embedded suite (8 convs, 32 channels)", depth=8, width=32)
class DnCNN(Denoiser):
    """noisy (B, 3, H, W) in about [0, 1] -> restored (B, 3, H, W) = noisy - predicted noise."""

    def __init__(self, depth: int = 17, width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, in_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        return noisy - self.body(noisy)
