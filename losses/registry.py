"""The objective registry.

An objective is a module ``forward(restored, clean, batch) -> (total, terms)``: restored and clean
(B, 3, H, W) float in about [0, 1]; ``batch`` carries what an objective may need beyond them
(``labels`` (B, H, W) train ids, ``sigma`` (B,)); ``total`` is the scalar to minimise and ``terms``
the float value of each weighted part, for logs. ``needs`` names what the runner must provide
("features", "segmenter", "discriminator").
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.errors import BenchError
from bench.registry import FactorySpec, Registry


class Objective(nn.Module):
    needs: frozenset[str] = frozenset()

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


OBJECTIVES: Registry[FactorySpec] = Registry("objective")


def register_objective(name: str, factory: Callable[..., Objective], description: str = "", **kwargs) -> None:
    OBJECTIVES.add(name, FactorySpec(name, factory, kwargs, description))


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


def objective_needs(name: str) -> frozenset[str]:
    spec = OBJECTIVES.get(name)
    return getattr(spec.factory, "needs", frozenset())


def objective_params(name: str, **overrides) -> dict:
    """The effective hyper-parameters of objective ``name`` (signature defaults < registered < overrides)."""
    return OBJECTIVES.get(name).params(**overrides)


def build_objective(name: str, resources: Resources | None = None, **overrides) -> Objective:
    """The objective ``name`` with its registered defaults, ``overrides`` on top, needs from ``resources``."""
    needs = {n: (resources or Resources()).get(n) for n in objective_needs(name)}
    return OBJECTIVES.get(name).build(**{**overrides, **needs})


# Default weights of the extra terms (the paper gives none), one rule for all: at the start of training
# (restored = noisy input) each term's gradient with respect to the restored image is about 0.4x the L1
# term's, so that L1 stays the anchor and the term regularises; measured on the embedded suite by
# `python -m bench.benchmarks.objective_scale`. Two exceptions: `ssim` keeps the usual L1 + (1 - SSIM), and
# `gan` uses 0.01 (adversarial gradients grow as the discriminator learns: 1.0 collapsed to 9.5 dB in 600
# steps). Weights 10x larger (1-4x L1's gradient) made the internal D2SM family lose 4 dB on synthcity.
# Any weight can be overridden per cell (objective_kwargs); the effective ones are part of the cell's hash.


def _register_all() -> None:
    from losses import d2sm, gan, perceptual, pixel, task

    reg = register_objective
    reg("l1", pixel.L1Objective, "mean absolute error")
    reg("ssim", pixel.SSIMObjective, "L1 + w (1 - SSIM), w = 1 (the paper's weight is unknown)", ssim_weight=1.0)
    reg("perceptual", perceptual.PerceptualObjective, "L1 + w mean |VGG19 conv3_2 (before ReLU) difference|")
    reg("lpips", perceptual.LPIPSObjective, "L1 + w LPIPS (package v0.1 alex, or its formula on the suite's VGG19)")
    reg("contextual", perceptual.ContextualObjective, "L1 + w contextual loss (Mechrez et al.), conv3_2, cosine, h 0.1")
    reg("cross_entropy", task.CrossEntropyObjective, "L1 + w CE of the frozen segmenter on the restored image")
    reg("gan", gan.GANObjective, "L1 + w non-saturating GAN loss, PatchGAN discriminator trained alongside")
    reg("d2sm", d2sm.D2SMObjective, "L1 + w KL(G'||G) of conv5_4 statistics over a FIFO queue (w/o Internal)",
        divergence="kl", sampling="queue", d2sm_weight=0.01)
    reg("d2sm_internal", d2sm.D2SMObjective, "L1 + w KL(G'||G) over the patches of each image (w/ Internal)",
        divergence="kl", sampling="internal", d2sm_weight=0.05)
    reg("ikld", d2sm.D2SMObjective, "D2SM w/ Internal with the KL reversed, KL(G||G')", divergence="ikl",
        sampling="internal", d2sm_weight=0.05)
    reg("jsd", d2sm.D2SMObjective, "D2SM w/ Internal with the Jensen-Shannon divergence", divergence="jsd",
        sampling="internal", d2sm_weight=0.2)


_register_all()
