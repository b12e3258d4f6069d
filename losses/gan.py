"""Adversarial objective: L1 + w * non-saturating GAN loss against a discriminator trained alongside.

Design (the paper gives none): a PatchGAN discriminator (Isola et al., CVPR 2017) of 3 strided
4x4 convolutions (base width 32, LeakyReLU 0.2, no normalisation) and a 1-channel patch logit map;
its own Adam (lr 2e-4, betas 0.5/0.999). Each training step first updates the discriminator on
(clean = real, restored.detach() = fake) with BCE, then returns the generator's loss
L1 + w * BCE(D(restored), real). The discriminator and its optimiser are part of the checkpoint.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losses.pixel import L1Objective
from losses.registry import register_objective


class PatchDiscriminator(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (B, 1, H/8, W/8) logits."""

    def __init__(self, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        c_in = 3
        for i in range(layers):
            c = width * 2 ** i
            mods += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c
        mods.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


@register_objective("gan", "L1 + w non-saturating GAN loss, PatchGAN discriminator trained alongside", order=80)
class GANObjective(L1Objective):
    exact_arithmetic = False  # not verified to round alike on every machine (bench.base.exact)
    needs = frozenset()

    def __init__(self, weight: float = 0.01, d_lr: float = 2e-4, d_width: int = 32, l1_weight: float = 1.0, **noise_terms):
        super().__init__(l1_weight, **noise_terms)
        self.discriminator = PatchDiscriminator(d_width)
        self.weight, self.d_lr = weight, d_lr
        self._opt: torch.optim.Optimizer | None = None

    def optimizer(self) -> torch.optim.Optimizer:
        if self._opt is None:  # built lazily, after the objective was moved to its device
            self._opt = torch.optim.Adam(self.discriminator.parameters(), lr=self.d_lr, betas=(0.5, 0.999))
        return self._opt

    def discriminator_step(self, restored: torch.Tensor, clean: torch.Tensor) -> float:
        real, fake = self.discriminator(clean), self.discriminator(restored.detach())
        loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        opt = self.optimizer()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def forward(self, restored, clean, batch=None):
        l1, terms = super().forward(restored, clean, batch)
        if self.training:
            terms["d_loss"] = self.discriminator_step(restored, clean)
        self.discriminator.requires_grad_(False)
        try:
            fake = self.discriminator(restored)
            term = self.weight * F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        finally:
            self.discriminator.requires_grad_(True)
        terms["gan"] = float(term.detach())
        return l1 + term, terms

    def train_state(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer().state_dict()}

    def load_train_state(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer().load_state_dict(state["optimizer"])
