"""Batched full-reference image metrics on tensors (one implementation, shared by loss and metric).

Inputs: float tensors (B, C, H, W) in [0, data_range]. Outputs: (B,) per-image values.
SSIM follows Wang et al. 2004 as pytorch-msssim computes it: 11x11 Gaussian window of sigma 1.5,
valid convolution (no padding), K1 = 0.01, K2 = 0.03, mean over channels and positions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(B,) PSNR in dB over all channels; +inf where the images are identical."""
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(data_range**2 / mse)).float()


def gaussian_window(size: int = 11, sigma: float = 1.5, device=None, dtype=torch.float32) -> torch.Tensor:
    """(size,) normalised 1-D Gaussian. Under exact training arithmetic (``bench.base.exact``) it is
    ``bench.base.exact.gaussian_window``, the same bits on every machine (``torch.exp`` is MKL VML's on CPUs, which rounds
    per code branch)."""
    from bench.base import exact

    if exact.active():
        return exact.gaussian_window(size, sigma).to(device=device, dtype=dtype)
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords * coords) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = win.numel()
    x = F.conv2d(x, win.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, win.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 11,
         win_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """(B,) SSIM; differentiable (the ``ssim`` objective uses this very function)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"ssim needs images of at least {win_size}x{win_size}, got {tuple(x.shape[-2:])}")
    # In fp32 at least, also under bf16 autocast: E[x²] - E[x]² cancels catastrophically in bf16 (the ssim objective
    # measured an infinite loss at its second bf16 step).
    with torch.autocast(x.device.type, enabled=False):
        dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
        x, y = x.to(dtype), y.to(dtype)
        win = gaussian_window(win_size, win_sigma, x.device, dtype)
        c1, c2 = (k1 * data_range) * (k1 * data_range), (k2 * data_range) * (k2 * data_range)
        mu_x, mu_y = _blur(x, win), _blur(y, win)
        sxx = _blur(x * x, win) - mu_x * mu_x  # products, not **2: one IEEE multiply (bench.base.exact)
        syy = _blur(y * y, win) - mu_y * mu_y
        sxy = _blur(x * y, win) - mu_x * mu_y
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        lum = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
        return (lum * cs).flatten(1).mean(1)


# Wang, Simoncelli, Bovik 2003: the weights of the five scales.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, c1: float, c2: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C) luminance x contrast-structure and contrast-structure means over valid positions."""
    mu_x, mu_y = _blur(x, win), _blur(y, win)
    sxx = _blur(x * x, win) - mu_x * mu_x
    syy = _blur(y * y, win) - mu_y * mu_y
    sxy = _blur(x * y, win) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return (lum * cs).flatten(2).mean(2), cs.flatten(2).mean(2)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 7, win_sigma: float = 1.5,
            weights: tuple[float, ...] = MS_SSIM_WEIGHTS, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """(B,) multi-scale SSIM (Wang et al. 2003) as pytorch-msssim computes it: per scale the valid-convolution SSIM
    terms, 2x2 average pooling between scales (padding odd sides), contrast-structure at the coarse scales and
    SSIM at the last, clamped at 0 (``relu``), raised to the scale weights, averaged over channels.

    ``win_size`` 7, not SSIM's 11: five scales need a smaller side above (win_size - 1) x 2^4, which is 96 px
    with 7 (the embedded suite's 128 x 256 images) and 160 px with 11."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ms_ssim needs two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    need = (win_size - 1) * 2 ** (len(weights) - 1)
    if min(x.shape[-2:]) <= need:
        raise ValueError(f"ms_ssim with {len(weights)} scales and a {win_size}-px window needs images with sides "
                         f"above {need} px, got {tuple(x.shape[-2:])}")
    with torch.autocast(x.device.type, enabled=False):
        dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
        x, y = x.to(dtype), y.to(dtype)
        win = gaussian_window(win_size, win_sigma, x.device, dtype)
        c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
        w = torch.tensor(weights, dtype=dtype, device=x.device)
        terms = []
        for level in range(len(weights)):
            ssim_c, cs_c = _ssim_parts(x, y, win, c1, c2)
            if level < len(weights) - 1:
                terms.append(torch.relu(cs_c))
                pad = [s % 2 for s in x.shape[-2:]]
                x = F.avg_pool2d(x, 2, padding=pad)
                y = F.avg_pool2d(y, 2, padding=pad)
        terms.append(torch.relu(ssim_c))
        stacked = torch.stack(terms, 0)  # (levels, B, C)
        return torch.prod(stacked ** w.view(-1, 1, 1), 0).mean(1)
