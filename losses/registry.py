"""The objective registry.

An objective is a module ``forward(restored, clean, batch) -> (total, terms)``: restored and clean
(B, 3, H, W) float in about [0, 1]; ``batch`` carries what an objective may need beyond them
(``labels`` (B, H, W) train ids, ``sigma`` (B,)); ``total`` is the scalar to minimise and ``terms``
the float value of each weighted part, for logs. ``needs`` names what the runner must provide
("features", "segmenter", "discriminator").
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from bench.registry import Registry


class Objective(nn.Module):
    needs: frozenset[str] = frozenset()

    def forward(self, restored: torch.Tensor, clean: torch.Tensor, batch: dict | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError


@dataclass(frozen=True)
class ObjectiveSpec:
    name: str
    factory: Callable[..., Objective]
    kwargs: dict = field(default_factory=dict)
    description: str = ""


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective")


def register_objective(name: str, factory: Callable[..., Objective], description: str = "", **kwargs) -> None:
    OBJECTIVES.add(name, ObjectiveSpec(name, factory, kwargs, description))


def build_objective(name: str, **overrides) -> Objective:
    spec = OBJECTIVES.get(name)
    return spec.factory(**{**spec.kwargs, **overrides})


def _register_all() -> None:
    from losses import pixel

    register_objective("l1", pixel.L1Objective, "mean absolute error")
    register_objective("ssim", pixel.SSIMObjective, "L1 + w (1 - SSIM), w = 1 by default (the paper's weight is unknown)",
                       ssim_weight=1.0)


_register_all()
