"""MS-SSIM (Wang et al. 2003): five scales, a 7 px window (``bench.base.image_metrics.ms_ssim`` says why)."""
from __future__ import annotations

import torch

from bench.base.errors import BenchError
from bench.base.image_metrics import ms_ssim as ms_ssim_fn
from bench.metrics.registry import MetricBatch, MetricEnv, register_metric


@register_metric("ms_ssim", higher_is_better=True, range=(0.0, 1.0), head="MS-SSIM", digits=4, tolerance=0.005,
                 order=30, description="MS-SSIM, 5 scales (Wang 2003 weights), 7 px Gaussian window (sigma 1.5)")
def ms_ssim(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
    """(B,) MS-SSIM in [0, 1]."""
    try:
        return ms_ssim_fn(batch.restored, batch.clean)
    except ValueError as e:
        raise BenchError(f"metric ms_ssim: {e}; leave ms_ssim out of this grid's metrics") from None
