"""SADNet (Chang, Li, Feng, Wang: "Spatial-Adaptive Network for Single Image Denoising", ECCV 2020).

An encoder-decoder: residual blocks and strided 2x2 convolutions down four scales (base ``width``
channels, doubling), a multi-dilation context block at the bottom, and on the way up residual
spatial-adaptive blocks (RSAB) whose first convolution is a modulated deformable convolution
(DCNv2, 8 offset groups) with offsets and masks predicted from an offset feature that is refined
from scale to scale. The deformable convolution is ``torchvision.ops.deform_conv2d`` on CUDA and the
same operation written with ``grid_sample`` on CPU (4-5x faster there, equal to it in tests); no
compiled extension of our own. Global residual. Blind: ``sigma`` is not an input.

``width=32, offset_width=32`` has 4,234,723 parameters (the published figure is ~4.23 M).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from models.base import Denoiser, zero_init_residual
from models.registry import register_backbone


def deform_conv2d_sampled(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          mask: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """``torchvision.ops.deform_conv2d`` (stride 1, dilation 1) written with ``grid_sample`` and a matmul.

    Same layouts and results as torchvision's (offsets (B, 2*G*K, H, W) as (dy, dx) per group and tap,
    masks (B, G*K, H, W), zero outside the image; equal to 1e-13 in float64, see tests) and 4-5x faster
    forward + backward on CPU, where torchvision's backward is serial. CUDA uses torchvision's kernel.
    """
    b, c, h, w = x.shape
    cout, _, kh, kw = weight.shape
    k = kh * kw
    g = offset.shape[1] // (2 * k)
    dev, dt = x.device, x.dtype
    ky, kx = torch.meshgrid(torch.arange(kh, device=dev, dtype=dt), torch.arange(kw, device=dev, dtype=dt), indexing="ij")
    ys = torch.arange(h, device=dev, dtype=dt).view(1, 1, h, 1) - padding + ky.reshape(1, k, 1, 1)
    xs = torch.arange(w, device=dev, dtype=dt).view(1, 1, 1, w) - padding + kx.reshape(1, k, 1, 1)
    off = offset.view(b, g, k, 2, h, w)
    py = ys.unsqueeze(0) + off[:, :, :, 0]  # (B, G, K, H, W)
    px = xs.unsqueeze(0) + off[:, :, :, 1]
    grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], -1)  # (B, G, K, H, W, 2)
    grid = grid.view(b * g, k * h, w, 2)
    sampled = F.grid_sample(x.reshape(b * g, c // g, h, w), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (B*G, C/G, K*H, W)
    sampled = sampled.view(b, g, c // g, k, h, w) * mask.view(b, g, 1, k, h, w)
    cols = sampled.reshape(b, c * k, h * w)
    out = weight.reshape(cout, c * k) @ cols
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.view(b, cout, h, w)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class ModulatedDeformConv(nn.Module):
    """3x3 DCNv2 whose offsets (2 per tap and group) and masks (sigmoid) come from a separate feature.

    The offset/mask predictor starts at zero: offsets 0 and masks 0.5 at initialisation.
    """

    def __init__(self, channels: int, offset_channels: int, groups: int = 8, k: int = 3) -> None:
        super().__init__()
        self.k, self.groups = k, groups
        self.weight = nn.Parameter(torch.empty(channels, channels, k, k))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        self.offset_mask = nn.Conv2d(offset_channels, groups * 3 * k * k, k, padding=k // 2)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)

    def forward(self, x: torch.Tensor, offset_feature: torch.Tensor) -> torch.Tensor:
        om = self.offset_mask(offset_feature)
        n = self.groups * self.k * self.k
        offset, mask = om[:, : 2 * n], torch.sigmoid(om[:, 2 * n:])
        if x.device.type == "cpu":
            return deform_conv2d_sampled(x, offset, self.weight, self.bias, mask, padding=self.k // 2)
        return deform_conv2d(x, offset, self.weight, self.bias, padding=self.k // 2, mask=mask)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.conv1 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return x + self.conv2(_lrelu(self.conv1(x)))


class RSABlock(nn.Module):
    """Residual spatial-adaptive block: deformable conv (offsets from ``offset``), LReLU, conv, residual."""

    def __init__(self, channels: int, offset_channels: int) -> None:
        super().__init__()
        self.dcn = ModulatedDeformConv(channels, offset_channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        return x + self.conv(_lrelu(self.dcn(x, offset)))


class OffsetBlock(nn.Module):
    """Offset features of one scale, refined from the coarser scale's (upsampled, doubled) when given."""

    def __init__(self, c_in: int, c_off: int, has_coarser: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_off, 3, padding=1)
        self.conv2 = nn.Conv2d(2 * c_off, c_off, 3, padding=1) if has_coarser else None
        self.conv3 = nn.Conv2d(c_off, c_off, 3, padding=1)

    def forward(self, x: torch.Tensor, coarser: torch.Tensor | None = None) -> torch.Tensor:
        off = _lrelu(self.conv1(x))
        if self.conv2 is not None and coarser is not None:
            up = F.interpolate(coarser, scale_factor=2, mode="bilinear", align_corners=False)
            off = _lrelu(self.conv2(torch.cat([off, 2 * up], 1)))
        return _lrelu(self.conv3(off))


class ContextBlock(nn.Module):
    """1x1 reduction, four dilated 3x3 convolutions (1, 2, 4, 8), 1x1 fusion, residual."""

    def __init__(self, channels: int, reduced: int, dilations: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.branches = nn.ModuleList(nn.Conv2d(reduced, reduced, 3, padding=d, dilation=d) for d in dilations)
        self.fusion = nn.Conv2d(reduced * len(dilations), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.reduce(x)
        return x + self.fusion(torch.cat([_lrelu(b(r)) for b in self.branches], 1))


@register_backbone("sadnet", "SADNet, published configuration (32 base ch, 32 offset ch)", order=20, width=32,
                   offset_width=32)
@register_backbone("sadnet_small", "SADNet reduced for the embedded suite (8 base ch, 8 offset ch)", order=21,
                   width=8, offset_width=8)
class SADNet(Denoiser):
    """``residual_init`` "zero": the output convolution starts at zero, so the network starts as the identity (its
    global residual); "pytorch": PyTorch's default initialisation, as the authors' code (``models.cbdnet``)."""
    legacy_defaults = {"residual_init": "pytorch"}  # cells measured before the parameter keep their hash

    def __init__(self, width: int = 32, offset_width: int = 32, residual_init: str = "pytorch") -> None:
        super().__init__()
        c = [width, 2 * width, 4 * width, 8 * width]
        self.enc = nn.ModuleList([ResBlock(3, c[0])] + [ResBlock(c[i], c[i]) for i in range(1, 4)])
        self.down = nn.ModuleList(nn.Conv2d(c[i], c[i + 1], 2, stride=2) for i in range(3))
        self.context = ContextBlock(c[3], 2 * width)
        self.offsets = nn.ModuleList(OffsetBlock(c[i], offset_width, has_coarser=i < 3) for i in range(4))
        self.rsab = nn.ModuleList(RSABlock(c[i], offset_width) for i in range(4))
        self.up = nn.ModuleList(nn.ConvTranspose2d(c[i + 1], c[i], 2, stride=2) for i in range(3))
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c[i], c[i], 1) for i in range(3))
        self.out = nn.Conv2d(c[0], 3, 3, padding=1)
        zero_init_residual(self.out, residual_init)

    def forward(self, noisy: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """noisy (B, 3, H, W) about [0, 1] -> restored (B, 3, H, W); any H, W (padded to a multiple of 8)."""
        h, w = noisy.shape[-2:]
        x = F.pad(noisy, (0, -w % 8, 0, -h % 8), mode="replicate")
        skips = []
        f = x
        for i in range(4):
            f = self.enc[i](f)
            if i < 3:
                skips.append(f)
                f = _lrelu(self.down[i](f))
        f = self.context(f)
        off = self.offsets[3](f)
        f = self.rsab[3](f, off)
        for i in (2, 1, 0):
            f = self.fuse[i](torch.cat([self.up[i](f), skips[i]], 1))
            off = self.offsets[i](f, off)
            f = self.rsab[i](f, off)
        return (self.out(f) + x)[..., :h, :w]
