"""A user's metric: GMSD, the gradient magnitude similarity deviation (Xue, Zhang, Mou, Bovik, IEEE TIP 2014).

Registered when imported (``plugins = ["gmsd.py"]`` in a grid file, or ``--plugin examples/gmsd.py``), like
``dncnn.py`` and ``charbonnier.py``; a grid names it in ``metrics``. Per image: luminance (ITU-R 601), 2x2 average
pooling, Prewitt gradient magnitudes of the output and the clean image, their similarity map
(2 m_r m_d + c) / (m_r^2 + m_d^2 + c) with c = 170 / 255^2, and its standard deviation over the image: 0 for
identical images, larger for more structural distortion (lower is better).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.metrics import MetricBatch, MetricEnv, register_metric

C = 170.0 / 255.0**2


def _gradient_magnitude(y: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 1, H - 2, W - 2) Prewitt gradient magnitude (valid convolution)."""
    kx = torch.tensor([[1.0, 0.0, -1.0]] * 3, dtype=y.dtype, device=y.device).view(1, 1, 3, 3) / 3.0
    gx, gy = F.conv2d(y, kx), F.conv2d(y, kx.transpose(-1, -2))
    return torch.sqrt(gx * gx + gy * gy)


@register_metric("gmsd", higher_is_better=False, range=(0.0, 1.0), head="GMSD", digits=4, tolerance=0.005,
                 description="GMSD (Xue et al. 2014): std of the gradient magnitude similarity map, Prewitt, 2x pooled")
def gmsd(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
    """(B,) GMSD of the 8-bit output against the clean image."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    lum = [F.avg_pool2d((x.double() * weights).sum(1, keepdim=True), 2) for x in (batch.restored, batch.clean)]
    m_d, m_r = (_gradient_magnitude(y) for y in lum)
    gms = (2 * m_r * m_d + C) / (m_r * m_r + m_d * m_d + C)
    return gms.flatten(1).std(1, unbiased=False).float()
