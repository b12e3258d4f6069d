"""The one call every backbone answers: ``restore(noisy, sigma)``."""
from __future__ import annotations

import torch
from torch import nn


class Denoiser(nn.Module):
    """Base of every backbone.

    ``restore(noisy, sigma)``: noisy (B, 3, H, W) float (not clipped, about [0, 1]); sigma (B,) noise
    std on the 0-1 scale (sigma/255), or a per-pixel std map (B, 1, H, W) where the degradation has one
    (``bench.degradations``), used by backbones with a noise-map input and ignored by blind ones. Returns the restored (B, 3, H, W), same size as the input for any H, W.
    """

    takes_sigma: bool = False
    # True when forward and backward use only convolutions, data movement and elementwise IEEE operations, so that
    # ``TrainConfig.arithmetic = "exact"`` gives the same bits on every machine (bench.base.exact; tests/test_exact.py)
    exact_arithmetic: bool = False

    def restore(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self(noisy, sigma)

    def extras(self) -> dict[str, torch.Tensor]:
        """Side outputs of the last call (CBDNet's noise estimate); none by default."""
        return {}


RESIDUAL_INITS = ("pytorch", "zero")


def zero_init_residual(conv: nn.Module, how: str) -> None:
    """``how`` "zero": the last layer of a global residual set to zero (weights and bias), so that the network
    starts as the identity; "pytorch": left as PyTorch initialised it."""
    if how not in RESIDUAL_INITS:
        raise ValueError(f"residual_init {how!r}: expected one of {', '.join(RESIDUAL_INITS)}")
    if how == "zero":
        with torch.no_grad():
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
