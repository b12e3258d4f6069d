"""PSNR in dB of the 8-bit output against the clean image (+inf where they are identical)."""
from __future__ import annotations

import torch

from bench.base.image_metrics import psnr as psnr_fn
from bench.metrics.registry import MetricBatch, MetricEnv, register_metric


@register_metric("psnr", higher_is_better=True, range=(0.0, float("inf")), head="PSNR", unit="dB", digits=2,
                 tolerance=0.1, order=10, description="PSNR over all channels, data range 1")
def psnr(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
    """(B,) PSNR in dB."""
    return psnr_fn(batch.restored, batch.clean)
