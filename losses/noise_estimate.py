"""CBDNet's optional terms on its noise-level estimate (Guo et al., CVPR 2019, Eq. (4)-(5)).

- asymmetric: sum |alpha - 1[est < true]| (est - true)^2, alpha < 0.5 punishing under-estimation more
  (a non-blind denoiser given too low a level leaves noise; too high only over-smooths);
- total variation: squared horizontal and vertical differences of the estimate (smooth maps).

Both are means over pixels here. Use them through the ``cbdnet_terms`` option of the L1 objective
(``objective_kwargs``), which reads the backbone's ``extras()["noise_map"]`` handed over in the batch.
"""
from __future__ import annotations

import torch


def asymmetric_loss(estimate: torch.Tensor, sigma: torch.Tensor, alpha: float = 0.3) -> torch.Tensor:
    """estimate (B, C, H, W) and the true sigma, (B,) or a per-pixel (B, 1, H, W) map, on the 0-1 scale -> scalar."""
    true = (sigma.view(-1, 1, 1, 1) if sigma.dim() == 1 else sigma).to(estimate)
    diff = estimate - true
    return ((alpha - (diff < 0).to(diff)).abs() * (diff * diff)).mean()  # products: exact arithmetic's IEEE ops


def total_variation(estimate: torch.Tensor) -> torch.Tensor:
    """Mean squared horizontal + vertical differences of (B, C, H, W)."""
    dx, dy = estimate.diff(dim=-1), estimate.diff(dim=-2)
    return (dx * dx).mean() + (dy * dy).mean()
