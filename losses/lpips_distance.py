"""LPIPS (Zhang et al., CVPR 2018): the formula on any feature network, and the `lpips` package itself.

``lpips_from_features`` is the package's v0.1 formula: unit-normalise each layer's features over
channels, square the difference, weight channels by the linear layer (or sum them when there is
none, the package's ``lpips=False``), average over space, sum over layers.

- cityscapes suite: :class:`LPIPSPackage`, the package's AlexNet v0.1 metric with its shipped
  linear weights and torchvision's ImageNet AlexNet loaded from a local file.
- synthcity suite: :class:`LPIPSOnFeatures`, the same formula on the embedded VGG19 at relu1_2,
  relu2_2, relu3_4, relu4_4, relu5_4 with unit channel weights (no calibrated linear layer exists
  for that network); results record it as such.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from losses.vgg import VGGFeatures

VGG19_LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")


def normalize_channels(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """(B, C, H, W) -> the same with unit L2 norm over C at every position."""
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


def lpips_from_features(f0: Sequence[torch.Tensor], f1: Sequence[torch.Tensor],
                        lin: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Per-image LPIPS (B,) from per-layer features (B, C_l, H_l, W_l); ``lin[l]`` is (C_l,) or None."""
    total = 0.0
    for i, (a, b) in enumerate(zip(f0, f1, strict=True)):
        d = (normalize_channels(a) - normalize_channels(b)).pow(2)
        d = (d * lin[i].view(1, -1, 1, 1)).sum(1) if lin is not None else d.sum(1)
        total = total + d.mean((1, 2))
    return total


class LPIPSOnFeatures(nn.Module):
    """LPIPS's formula on a VGGFeatures (unit channel weights). forward: x, y (B, 3, H, W) in [0, 1] -> (B,)."""

    description = "LPIPS formula (v0.1, unit linear weights) on the embedded VGG19 at " + ", ".join(VGG19_LPIPS_LAYERS)

    def __init__(self, vgg: VGGFeatures, layers: Sequence[str] = VGG19_LPIPS_LAYERS) -> None:
        super().__init__()
        self.vgg, self.layers = vgg, tuple(layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.vgg(x, self.layers), self.vgg(y, self.layers)
        return lpips_from_features([fx[n] for n in self.layers], [fy[n] for n in self.layers])


class LPIPSPackage(nn.Module):
    """The `lpips` package's metric (v0.1, AlexNet by default) with backbone weights from a local file."""

    def __init__(self, backbone_weights: Path, net: str = "alex") -> None:
        super().__init__()
        import warnings

        import lpips

        from bench.base.errors import BenchError
        from losses.pretrained import load_state_dict_file

        if net != "alex":
            raise BenchError("only the AlexNet LPIPS (the authors' metric script) is wired to local weights")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.metric = lpips.LPIPS(net=net, version="0.1", pnet_rand=True, verbose=False)
        sd = load_state_dict_file(backbone_weights)
        target = self.metric.net.state_dict()
        mapped = {k: sd.get("features." + k.split(".", 1)[1]) for k in target}
        missing = [k for k, v in mapped.items() if v is None]
        if missing:
            raise BenchError(f"{backbone_weights} is not torchvision's AlexNet: no {missing[0]}")
        self.metric.net.load_state_dict(mapped)
        self.metric.eval().requires_grad_(False)
        self.description = f"lpips package v0.1 {net} (backbone {Path(backbone_weights).name})"

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.metric(x, y, normalize=True).flatten()
