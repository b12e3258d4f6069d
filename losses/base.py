"""What every training objective is, and the frozen networks it may ask for.

An objective is a module ``forward(restored, clean, batch) -> (total, terms)``: restored and clean
(B, 3, H, W) float in about [0, 1]; ``batch`` carries what an objective may need beyond them
(``labels`` (B, H, W) train ids, ``sigma`` (B,)); ``total`` is the scalar to minimise and ``terms``
the float value of each weighted part, for logs. ``needs`` names what the runner must provide
("features", "segmenter", "lpips"), passed to the constructor by those names. By convention the
extra term's weight is the keyword ``weight`` and the L1 anchor's ``l1_weight``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.base.errors import BenchError


class Objective(nn.Module):
    needs: frozenset[str] = frozenset()
    # True when the objective uses only convolutions, data movement, elementwise IEEE operations and means (whose
    # gradient is a division), so that exact training arithmetic holds (bench.base.exact; tests/test_exact.py)
    exact_arithmetic: bool = False

    def forward(self, restored: torch.Tensor, clean: torch.Tensor, batch: dict | None = None
                ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def use_frozen(self, **nets) -> None:
        """Keep frozen networks (features, segmenter, LPIPS) as plain attributes, not submodules: they stay
        in eval mode, out of the objective's state and off its device moves (the suite placed them)."""
        for name, net in nets.items():
            self.__dict__[name] = net

    def train_state(self) -> dict:
        """What a checkpoint must hold to resume this objective exactly (queues, a discriminator)."""
        return {}

    def load_train_state(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no training state but the checkpoint has {sorted(state)}")


class Resources:
    """The frozen networks objectives may need, built once on first request by ``providers[name]()``."""

    def __init__(self, **providers: Callable[[], object]) -> None:
        self._providers, self._built = providers, {}

    def get(self, name: str) -> object:
        if name not in self._built:
            if name not in self._providers:
                raise BenchError(f"this suite provides no {name!r} for the objectives")
            self._built[name] = self._providers[name]()
        return self._built[name]
