"""A user's objective: the Charbonnier loss sqrt((x - y)^2 + eps^2), a smooth L1 (Lai et al., LapSRN).

Registered when imported, like ``dncnn.py``; ``weight`` is its term's weight, as for every objective.
"""
from __future__ import annotations

import torch

from losses.base import Objective
from losses.registry import register_objective


@register_objective("charbonnier", "w mean sqrt((restored - clean)^2 + eps^2)")
class CharbonnierObjective(Objective):
    def __init__(self, weight: float = 1.0, eps: float = 1e-3) -> None:
        super().__init__()
        self.weight, self.eps = weight, eps

    def forward(self, restored: torch.Tensor, clean: torch.Tensor, batch: dict | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        term = self.weight * torch.sqrt((restored - clean) ** 2 + self.eps ** 2).mean()
        return term, {"charbonnier": float(term.detach())}
