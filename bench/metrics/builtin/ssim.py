"""SSIM (Wang et al. 2004) of the 8-bit output, as pytorch-msssim computes it (11 px Gaussian window, sigma 1.5)."""
from __future__ import annotations

import torch

from bench.base.image_metrics import ssim as ssim_fn
from bench.metrics.registry import MetricBatch, MetricEnv, register_metric


@register_metric("ssim", higher_is_better=True, range=(-1.0, 1.0), head="SSIM", digits=4, tolerance=0.005, order=20,
                 description="SSIM, 11 px Gaussian window (sigma 1.5), valid convolution, mean over channels")
def ssim(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
    """(B,) SSIM."""
    return ssim_fn(batch.restored, batch.clean)
