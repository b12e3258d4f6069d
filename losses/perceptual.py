"""Feature-space objectives: perceptual (VGG feature L1), LPIPS, and the contextual loss.

Each is L1 + w * term; features come from the suite's frozen network (see losses/vgg.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from losses.pixel import L1Objective
from losses.registry import register_objective


@register_objective("perceptual", "L1 + w mean |VGG19 conv3_2 (before ReLU) difference|", order=20)
class PerceptualObjective(L1Objective):
    """L1 + w * mean |Phi_l(restored) - Phi_l(clean)| at one VGG layer (default conv3_2, before ReLU)."""

    exact_arithmetic = False  # not verified to round alike on every machine (bench.base.exact)

    needs = frozenset({"features"})

    def __init__(self, features, layer: str = "conv3_2", weight: float = 0.02, l1_weight: float = 1.0, **noise_terms):
        super().__init__(l1_weight, **noise_terms)
        self.use_frozen(features=features)
        self.layer, self.weight = layer, weight

    def forward(self, restored, clean, batch=None):
        l1, terms = super().forward(restored, clean, batch)
        fr = self.features(restored, [self.layer])[self.layer]
        with torch.no_grad():
            fc = self.features(clean, [self.layer])[self.layer]
        term = self.weight * F.l1_loss(fr, fc)
        terms["perceptual"] = float(term.detach())
        return l1 + term, terms


@register_objective("lpips", "L1 + w LPIPS (package v0.1 alex, or its formula on the suite's VGG19)", order=30)
class LPIPSObjective(L1Objective):
    """L1 + w * mean LPIPS(restored, clean); the distance is the suite's (package or formula)."""

    exact_arithmetic = False  # not verified to round alike on every machine (bench.base.exact)

    needs = frozenset({"lpips"})

    def __init__(self, lpips, weight: float = 0.006, l1_weight: float = 1.0, **noise_terms):
        super().__init__(l1_weight, **noise_terms)
        self.use_frozen(lpips=lpips)
        self.weight = weight

    def forward(self, restored, clean, batch=None):
        l1, terms = super().forward(restored, clean, batch)
        term = self.weight * self.lpips(restored, clean).mean()
        terms["lpips"] = float(term.detach())
        return l1 + term, terms


def contextual_similarity(x: torch.Tensor, y: torch.Tensor, h: float = 0.1, eps: float = 1e-5,
                          center: str = "image") -> torch.Tensor:
    """Contextual similarity CX(x, y) per image (Mechrez et al., ECCV 2018), cosine distance.

    x, y: (B, C, H, W) features of the output and the target. Returns (B,) in (0, 1]; 1 when every
    target feature has an output feature much closer than all others. ``center``: both centred by the target's
    mean per image ("image") or over the batch and space ("target_batch", the authors' ``center_by_T``).
    """
    b, c = x.shape[:2]
    mu = y.mean((0, 2, 3), keepdim=True) if center == "target_batch" else y.mean((2, 3), keepdim=True)
    xs = F.normalize((x - mu).flatten(2), dim=1)  # (B, C, N)
    ys = F.normalize((y - mu).flatten(2), dim=1)  # (B, C, M)
    dist = 1.0 - torch.bmm(xs.transpose(1, 2), ys)  # (B, N, M): cosine distance of output i to target j
    rel = dist / (dist.min(dim=2, keepdim=True).values + eps)  # relative to i's nearest target
    cx = torch.softmax((1.0 - rel) / h, dim=2)  # CX_ij = w_ij / sum_k w_ik
    return cx.max(dim=1).values.mean(dim=1)


@register_objective("contextual", "L1 + w contextual loss (Mechrez et al.), conv3_2, cosine, h 0.1", order=40)
class ContextualObjective(L1Objective):
    """L1 + w * -log CX(Phi(restored), Phi(clean)) at conv3_2, h = 0.1 (Mechrez et al.)."""

    exact_arithmetic = False  # not verified to round alike on every machine (bench.base.exact)

    needs = frozenset({"features"})
    authors_params = {"center": "target_batch"}  # what --protocol authors sets (their center_by_T)

    def __init__(self, features, layer: str = "conv3_2", h: float = 0.1, weight: float = 0.005,
                 l1_weight: float = 1.0, center: str = "image", similarity_precision: str = "fp32", **noise_terms):
        super().__init__(l1_weight, **noise_terms)
        if center not in ("image", "target_batch"):
            raise ValueError(f"center {center!r}: expected image or target_batch")
        if similarity_precision not in ("fp32", "train"):
            raise ValueError(f"similarity_precision {similarity_precision!r}: expected fp32 or train")
        self.use_frozen(features=features)
        self.layer, self.h, self.weight, self.center = layer, h, weight, center
        # "fp32": CX from float32 features with autocast off. Cosine distances of near-identical features are
        # 1 - cos ~ 1e-3, below bf16's resolution near 1 (2^-8), so under bf16 the relative distances were noise and
        # the term trained another network on a CPU without AMX (1 dB PSNR lower than fp32). "train": the training
        # precision, as cells before this option had.
        self.similarity_precision = similarity_precision

    def forward(self, restored, clean, batch=None):
        l1, terms = super().forward(restored, clean, batch)
        fr = self.features(restored, [self.layer])[self.layer]
        with torch.no_grad():
            fc = self.features(clean, [self.layer])[self.layer]
        if self.similarity_precision == "fp32":
            with torch.autocast(fr.device.type, enabled=False):
                cx = contextual_similarity(fr.float(), fc.float(), self.h, center=self.center)
        else:
            cx = contextual_similarity(fr, fc, self.h, center=self.center)
        term = self.weight * -torch.log(cx).mean()
        terms["contextual"] = float(term.detach())
        return l1 + term, terms
