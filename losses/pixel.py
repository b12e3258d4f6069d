"""Pixel objectives: L1, and L1 + (1 - SSIM) with the very SSIM the metric uses."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.base.image_metrics import ssim
from losses.base import Objective
from losses.noise_estimate import asymmetric_loss, total_variation
from losses.registry import register_objective


@register_objective("l1", "mean absolute error", order=0)
class L1Objective(Objective):
    """L1, the base term of every objective; optionally CBDNet's noise-estimate terms (elementwise operations and
    means: exact arithmetic holds, ``bench.base.exact``; so does SSIM's below, its blur being two convolutions).

    ``asymmetric_weight``/``tv_weight`` > 0 add CBDNet's asymmetric and total-variation terms on the
    backbone's noise estimate (``batch["extras"]["noise_map"]``; the paper's 0.5 and 0.05). Off by
    default: the D2SM paper trains every backbone with the objective alone.
    """

    exact_arithmetic = True

    def __init__(self, l1_weight: float = 1.0, asymmetric_weight: float = 0.0, tv_weight: float = 0.0) -> None:
        super().__init__()
        self.l1_weight, self.asymmetric_weight, self.tv_weight = l1_weight, asymmetric_weight, tv_weight

    def forward(self, restored, clean, batch=None):
        l1 = self.l1_weight * F.l1_loss(restored, clean)
        terms = {"l1": float(l1.detach())}
        if self.asymmetric_weight or self.tv_weight:
            l1 = l1 + self._noise_estimate_terms(batch or {}, terms)
        return l1, terms

    def _noise_estimate_terms(self, batch: dict, terms: dict) -> torch.Tensor:
        estimate = (batch.get("extras") or {}).get("noise_map")
        if estimate is None:
            raise ValueError("asymmetric/tv terms need a backbone with a noise estimate (cbdnet): none in the batch")
        asym = self.asymmetric_weight * asymmetric_loss(estimate, batch["sigma"])
        tv = self.tv_weight * total_variation(estimate)
        terms["asymmetric"], terms["tv"] = float(asym.detach()), float(tv.detach())
        return asym + tv


@register_objective("ssim", "L1 + w (1 - SSIM), w = 1 (the paper's weight is unknown)", order=10, weight=1.0)
class SSIMObjective(L1Objective):
    def __init__(self, l1_weight: float = 1.0, weight: float = 1.0, **noise_terms) -> None:
        super().__init__(l1_weight, **noise_terms)
        self.weight = weight

    def forward(self, restored, clean, batch=None):
        l1, terms = super().forward(restored, clean, batch)
        dssim = self.weight * (1.0 - ssim(restored, clean, data_range=1.0).mean())
        terms["ssim"] = float(dssim.detach())
        return l1 + dssim, terms
