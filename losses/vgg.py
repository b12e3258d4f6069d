"""VGG19 feature extractor with the layer names the losses speak (conv1_1 ... conv5_4, relu*, pool*).

Same module indices as torchvision's ``vgg19().features`` (Simonyan & Zisserman, ICLR 2015), so
ImageNet weights load as they are; ``width`` scales every stage's channels (the embedded suite's
network is ``width=0.25``: 16/32/64/128/128 channels). Input: RGB in [0, 1], (B, 3, H, W);
ImageNet mean/std normalisation happens inside.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

STAGES = (2, 2, 4, 4, 4)  # convolutions per stage in VGG19
FULL_WIDTHS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names() -> list[str]:
    """Names of ``features``' modules in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    names = []
    for s, n in enumerate(STAGES, start=1):
        for i in range(1, n + 1):
            names += [f"conv{s}_{i}", f"relu{s}_{i}"]
        names.append(f"pool{s}")
    return names


LAYER_NAMES: tuple[str, ...] = tuple(layer_names())


def stage_widths(width: float) -> tuple[int, ...]:
    return tuple(max(1, round(c * width)) for c in FULL_WIDTHS)


class VGGFeatures(nn.Module):
    """Frozen-by-default VGG19 trunk returning the named activations asked for."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.width = width
        layers: list[nn.Module] = []
        c_in = 3
        for n, c in zip(STAGES, stage_widths(width), strict=True):
            for _ in range(n):
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = c
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def channels(self, layer: str) -> int:
        """Channels of the activation called ``layer``."""
        idx = LAYER_NAMES.index(layer)
        for m in reversed(self.features[: idx + 1]):
            if isinstance(m, nn.Conv2d):
                return m.out_channels
        raise AssertionError

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """x (B, 3, H, W) RGB in [0, 1] -> {layer: (B, C, H / 2^k, W / 2^k)}; stops at the deepest one asked."""
        wanted = set(layers)
        unknown = wanted - set(LAYER_NAMES)
        if unknown:
            from bench.base.registry import unknown_name_message

            raise KeyError(unknown_name_message("VGG19 layer", sorted(unknown)[0], LAYER_NAMES))
        last = max(LAYER_NAMES.index(n) for n in wanted)
        h = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)  # ~20 % faster on CPU
        out = {}
        for i in range(last + 1):
            h = self.features[i](h)
            if LAYER_NAMES[i] in wanted:
                out[LAYER_NAMES[i]] = h
        return out

    def freeze(self) -> VGGFeatures:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self
