"""LPIPS distance of the 8-bit output to the clean image (lower is better), on the suite's LPIPS network.

cityscapes: the `lpips` package's AlexNet v0.1 with its linear weights (``losses.lpips_distance.LPIPSPackage``);
synthcity: LPIPS's formula on the embedded VGG19 with unit channel weights (``LPIPSOnFeatures``): a different
network, so its numbers are not comparable to published LPIPS values; a result records which one measured it.
"""
from __future__ import annotations

import torch

from bench.metrics.registry import MetricBatch, MetricEnv, register_metric

BATCH = 8  # images per network pass: bounded memory at full resolution


def _describe(env: MetricEnv) -> str:
    return getattr(env.resource("lpips", "lpips"), "description", "LPIPS")


@register_metric("lpips", higher_is_better=False, range=(0.0, float("inf")), head="LPIPS", digits=4, tolerance=0.005,
                 order=40, description="LPIPS distance on the suite's LPIPS network")
def lpips(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
    """(B,) LPIPS distances."""
    net = env.resource("lpips", "lpips")
    out = []
    with torch.no_grad():
        for i in range(0, len(batch.restored), BATCH):
            x = batch.restored[i:i + BATCH].to(env.device)
            y = batch.clean[i:i + BATCH].to(env.device)
            out.append(net(x, y).float().flatten().cpu())
    return torch.cat(out)


lpips.describe = _describe
