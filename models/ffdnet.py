"""FFDNet (Zhang, Zuo, Zhang: "FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image
Denoising", IEEE TIP 2018), in the configuration of the D2SM authors' code: pixel-unshuffle x2,
a constant noise-map channel of sigma, ``depth`` 3x3 convolutions of ``width`` channels with ReLU
(no batch norm), pixel-shuffle back. With width 96 and depth 12 it has 852,108 parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.base import Denoiser
from models.registry import register_backbone


@register_backbone("ffdnet", "FFDNet, authors' configuration (96 channels, 12 convs)", order=0, width=96, depth=12)
@register_backbone("ffdnet_small", "FFDNet reduced for the embedded suite (48 ch, 6 convs)", order=1, width=48, depth=6)
@register_backbone("ffdnet_tiny", "FFDNet of the smoke grid (32 ch, 4 convs): converges in a minute of CPU", order=2,
                   width=32, depth=4)
class FFDNet(Denoiser):
    takes_sigma = True
    exact_arithmetic = True  # convolutions, ReLU, pixel shuffles, padding (bench.base.exact)

    def __init__(self, in_channels: int = 3, width: int = 96, depth: int = 12) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("FFDNet needs depth >= 2 (head and tail convolutions)")
        layers: list[nn.Module] = [nn.Conv2d(in_channels * 4 + 1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, in_channels * 4, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """noisy (B, C, H, W), sigma (B,) or a per-pixel map (B, 1, H, W) on the 0-1 scale -> restored (B, C, H, W).
        A map is averaged over each 2x2 block, the resolution FFDNet's noise-map channel has."""
        h, w = noisy.shape[-2:]
        x = F.pad(noisy, (0, w % 2, 0, h % 2), mode="replicate")
        x = F.pixel_unshuffle(x, 2)
        if sigma.dim() == 1:
            level = sigma.to(x.dtype).view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:])
        else:
            level = F.avg_pool2d(F.pad(sigma.to(x.dtype), (0, w % 2, 0, h % 2), mode="replicate"), 2)
        x = self.body(torch.cat([x, level], 1))
        return F.pixel_shuffle(x, 2)[..., :h, :w]
