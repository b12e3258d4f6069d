"""The one call every backbone answers: ``restore(noisy, sigma)``."""
from __future__ import annotations

import torch
from torch import nn


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
