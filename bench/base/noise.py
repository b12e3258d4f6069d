"""The paper's noise protocol.

Training: additive Gaussian noise, sigma ~ U(0, sigma_max)/255 drawn per image, no clipping.
Test: noise fixed per (image id, sigma, seed), whatever the order or batch of evaluation.
Scoring: every image is quantised to uint8 first, as a saved PNG would be.
"""
from __future__ import annotations

import hashlib

import torch


def draw_train_sigma(batch: int, sigma_max: float, gen: torch.Generator) -> torch.Tensor:
    """(B,) noise levels in [0, sigma_max/255]."""
    return torch.rand(batch, generator=gen) * (sigma_max / 255.0)


def add_train_noise(clean: torch.Tensor, sigma: torch.Tensor, gen: torch.Generator, exact: bool = False
                    ) -> torch.Tensor:
    """clean (B, C, H, W) in [0, 1], sigma (B,) on the 0-1 scale -> noisy, not clipped. ``exact``: the normal
    samples are drawn in float64 and rounded (the same bits on every instruction set; ``bench.base.exact``)."""
    if exact:
        from bench.base.exact import exact_randn

        noise = exact_randn(clean.shape, gen)
    else:
        noise = torch.randn(clean.shape, generator=gen, device=gen.device)
    return clean + (noise * sigma.view(-1, 1, 1, 1)).to(clean.device)


def eval_noise_seed(image_id: str, sigma: float, seed: int) -> int:
    digest = hashlib.sha256(f"{image_id}|{float(sigma):g}|{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def eval_noise(image_id: str, sigma: float, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Gaussian noise (float32, CPU) of std sigma/255 (sigma on the 0-255 scale) for one image."""
    gen = torch.Generator().manual_seed(eval_noise_seed(image_id, sigma, seed))
    return torch.randn(shape, generator=gen) * (float(sigma) / 255.0)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Float image in [0, 1] (values outside are clipped) -> uint8, rounding as a PNG writer would."""
    return (x.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1]."""
    return x.to(torch.float32) / 255.0
