"""The one call every backbone answers: ``restore(noisy, sigma)``."""
from __future__ import annotations

import torch
from torch import nn


INITS = ("pytorch", "kaiming")


def initialize(module: nn.Module, scheme: str) -> None:
    """Weights of every convolution: "pytorch" (its layer defaults, kaiming-uniform with a = sqrt(5): each
    ReLU layer scales the signal's variance by about 1/6) or "kaiming" (He et al. 2015: normal, fan-in, gain
    sqrt(2) for ReLU, so the signal keeps its scale through depth; biases 0)."""
    if scheme not in INITS:
        raise ValueError(f"init {scheme!r}: expected one of {', '.join(INITS)}")
    if scheme == "pytorch":
        return
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in" if isinstance(m, nn.Conv2d) else "fan_out",
                                    nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Denoiser(nn.Module):
    """Base of every backbone.

    ``restore(noisy, sigma)``: noisy (B, 3, H, W) float (not clipped, about [0, 1]); sigma (B,) noise
    std on the 0-1 scale (sigma/255), used by backbones with a noise-map input and ignored by blind
    ones. Returns the restored (B, 3, H, W), same size as the input for any H, W.
    """

    takes_sigma: bool = False

    def restore(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self(noisy, sigma)

    def extras(self) -> dict[str, torch.Tensor]:
        """Side outputs of the last call (CBDNet's noise estimate); none by default."""
        return {}
