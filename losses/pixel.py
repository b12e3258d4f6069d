"""Pixel objectives: L1, and L1 + (1 - SSIM) with the very SSIM the metric uses."""
from __future__ import annotations

import torch.nn.functional as F

from bench.metrics import ssim
from losses.registry import Objective


class L1Objective(Objective):
    def __init__(self, l1_weight: float = 1.0) -> None:
        super().__init__()
        self.l1_weight = l1_weight

    def forward(self, restored, clean, batch=None):
        l1 = self.l1_weight * F.l1_loss(restored, clean)
        return l1, {"l1": float(l1.detach())}


class SSIMObjective(L1Objective):
    def __init__(self, l1_weight: float = 1.0, ssim_weight: float = 1.0) -> None:
        super().__init__(l1_weight)
        self.ssim_weight = ssim_weight

    def forward(self, restored, clean, batch=None):
        l1, terms = super().forward(restored, clean, batch)
        dssim = self.ssim_weight * (1.0 - ssim(restored, clean, data_range=1.0).mean())
        terms["ssim"] = float(dssim.detach())
        return l1 + dssim, terms
