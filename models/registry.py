"""The backbone registry and the one call every backbone answers: ``restore(noisy, sigma)``."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from bench.registry import FactorySpec, Registry


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


BACKBONES: Registry[FactorySpec] = Registry("backbone")


def register_backbone(name: str, factory: Callable[..., Denoiser], description: str = "", **kwargs) -> None:
    BACKBONES.add(name, FactorySpec(name, factory, kwargs, description))


def backbone_params(name: str, **overrides) -> dict:
    """The effective constructor arguments of backbone ``name`` (signature defaults < registered < overrides)."""
    return BACKBONES.get(name).params(**overrides)


def build_backbone(name: str, **overrides) -> Denoiser:
    return BACKBONES.get(name).build(**overrides)


def _register_all() -> None:
    from models import cbdnet, ffdnet, sadnet

    register_backbone("ffdnet", ffdnet.FFDNet, "FFDNet, authors' configuration (96 channels, 12 convs)",
                      width=96, depth=12)
    register_backbone("ffdnet_small", ffdnet.FFDNet, "FFDNet reduced for the embedded suite (48 ch, 8 convs)",
                      width=48, depth=8)
    register_backbone("cbdnet", cbdnet.CBDNet, "CBDNet, published configuration (U-Net 64/128/256, estimator 32 ch)",
                      widths=(64, 128, 256), estimator_width=32)
    register_backbone("cbdnet_small", cbdnet.CBDNet, "CBDNet reduced for the embedded suite (U-Net 16/32/64, "
                      "estimator 16 ch)", widths=(16, 32, 64), estimator_width=16)
    register_backbone("sadnet", sadnet.SADNet, "SADNet, published configuration (32 base ch, 32 offset ch)",
                      width=32, offset_width=32)
    register_backbone("sadnet_small", sadnet.SADNet, "SADNet reduced for the embedded suite (8 base ch, 8 offset ch)",
                      width=8, offset_width=8)


_register_all()
