"""Deep Semantic Statistics Matching (Mei, Patel & Huang, ECCV 2022) and its divergence variants.

Samples are deep features f = Phi(x) (VGG19 conv5_4 before ReLU by default), flattened and
L2-normalised. Over a set of n samples the kernel K(a, b) = (cos(a, b) + 1) / 2 in [0, 1] gives
conditional probabilities g_{j|i} = K(i, j) / sum_{k != i} K(i, k) (diagonal excluded). With G'
from restored features and G from the clean ones, Eq. (1) of the paper is

    D2SM = sum_i sum_{j != i} g'_{j|i} log(g'_{j|i} / g_{j|i})      (KL(G' || G), summed over rows)

``ikld`` swaps the arguments (KL(G || G')) and ``jsd`` uses the mixture M = (G + G') / 2:
JS = 1/2 KL(G' || M) + 1/2 KL(G || M), at most log 2 per row.

Where the samples come from:
- ``queue`` ("w/o Internal", Memorized Historic Sampling): whole crops are the samples; two FIFO
  queues (restored, clean) of q entries. The current batch enters with its autograd graph, the
  q - N older entries are detached constants. (The authors' release pushes the batch under
  ``torch.no_grad()``, which leaves the restored image without gradient; here it has one.)
- ``internal`` ("w/ Internal"): each image is cut into patches (size, stride) and the patches of
  one image are its samples; the divergence is summed within each image and averaged over images.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from losses.pixel import L1Objective
from losses.registry import register_objective

Divergence = Literal["kl", "ikl", "jsd"]
EPS = 1e-12


def conditional_probabilities(f: torch.Tensor) -> torch.Tensor:
    """f (..., n, d) L2-normalised rows -> (..., n, n) g_{j|i}: rows sum to 1, zero diagonal."""
    k = (f @ f.transpose(-1, -2) + 1.0) / 2.0
    eye = torch.eye(f.shape[-2], dtype=torch.bool, device=f.device)
    k = k.clamp_min(EPS).masked_fill(eye, 0.0)
    return k / k.sum(-1, keepdim=True)


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(..., n, n) -> (..., n): sum_j p_ij log(p_ij / q_ij), zero entries of p contributing 0."""
    return torch.where(p > 0, p * (p.clamp_min(EPS).log() - q.clamp_min(EPS).log()), torch.zeros_like(p)).sum(-1)


def row_divergence(p_restored: torch.Tensor, p_clean: torch.Tensor, kind: Divergence) -> torch.Tensor:
    """Per-row divergence (..., n) between restored (G') and clean (G) conditional probabilities."""
    if kind == "kl":
        return _kl_rows(p_restored, p_clean)
    if kind == "ikl":
        return _kl_rows(p_clean, p_restored)
    if kind == "jsd":
        m = (p_restored + p_clean) / 2
        return 0.5 * _kl_rows(p_restored, m) + 0.5 * _kl_rows(p_clean, m)
    raise ValueError(f"unknown divergence {kind!r} (kl, ikl, jsd)")


def statistics_divergence(f_restored: torch.Tensor, f_clean: torch.Tensor, kind: Divergence = "kl") -> torch.Tensor:
    """Eq. (1): f_* (..., n, d) features (normalised here) -> (...) divergence summed over rows.

    The n x n statistics are computed in float64: conditional probabilities are close to uniform,
    and in float32 their log-ratios drown in rounding.
    """
    pr = conditional_probabilities(F.normalize(f_restored.double(), dim=-1))
    pc = conditional_probabilities(F.normalize(f_clean.double(), dim=-1))
    return row_divergence(pr, pc, kind).sum(-1).to(f_restored.dtype)


class FeatureQueue:
    """A FIFO of at most ``size`` feature rows, newest first; stored rows are detached."""

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError("a queue needs room for at least 2 samples")
        self.size = size
        self.rows: torch.Tensor | None = None

    def samples(self, current: torch.Tensor) -> torch.Tensor:
        """current (N, d) (with graph) followed by the newest q - N stored rows (constants)."""
        if self.rows is None:
            return current
        older = self.rows[: max(self.size - current.shape[0], 0)].to(current.device)
        return torch.cat([current, older])

    def push(self, current: torch.Tensor) -> None:
        rows = current.detach()
        self.rows = (rows if self.rows is None else torch.cat([rows, self.rows.to(rows.device)]))[: self.size]


def image_patches(x: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """x (B, C, H, W) -> (B, P, C, p, p) patches of side p = min(size, H, W) on a ``stride`` grid."""
    b, c, h, w = x.shape
    p = min(size, h, w)
    cols = F.unfold(x, kernel_size=p, stride=stride)  # (B, C*p*p, P)
    return cols.transpose(1, 2).reshape(b, -1, c, p, p)


@register_objective("ikld", "D2SM w/ Internal with the KL reversed, KL(G||G')", order=60, divergence="ikl",
                    sampling="internal", weight=0.05)
@register_objective("jsd", "D2SM w/ Internal with the Jensen-Shannon divergence", order=70, divergence="jsd",
                    sampling="internal", weight=0.2)
@register_objective("d2sm", "L1 + w KL(G'||G) of conv5_4 statistics over a FIFO queue (w/o Internal)", order=90,
                    divergence="kl", sampling="queue", weight=0.01)
@register_objective("d2sm_internal", "L1 + w KL(G'||G) over the patches of each image (w/ Internal)", order=100,
                    divergence="kl", sampling="internal", weight=0.05)
class D2SMObjective(L1Objective):
    """L1 + w * divergence of the deep semantic statistics of restored vs clean images."""

    exact_arithmetic = False  # not verified to round alike on every machine (bench.base.exact)

    needs = frozenset({"features"})

    def __init__(self, features, layer: str = "conv5_4", divergence: Divergence = "kl",
                 sampling: Literal["queue", "internal"] = "queue", queue_size: int = 64, patch: int = 32,
                 stride: int = 16, weight: float = 1.0, l1_weight: float = 1.0, **noise_terms) -> None:
        super().__init__(l1_weight, **noise_terms)
        if sampling not in ("queue", "internal"):
            raise ValueError(f"unknown sampling {sampling!r} (queue, internal)")
        row_divergence(torch.ones(1, 1), torch.ones(1, 1), divergence)  # validates the name
        self.use_frozen(features=features)
        self.layer, self.divergence, self.sampling = layer, divergence, sampling
        self.patch, self.stride, self.weight = patch, stride, weight
        self.term_name = {"kl": "d2sm", "ikl": "ikld", "jsd": "jsd"}[divergence]
        self.queues = (FeatureQueue(queue_size), FeatureQueue(queue_size)) if sampling == "queue" else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D) flattened features of ``layer``."""
        return self.features(x, [self.layer])[self.layer].flatten(1)

    def statistics_term(self, restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        if self.sampling == "internal":
            pr, pc = image_patches(restored, self.patch, self.stride), image_patches(clean, self.patch, self.stride)
            b, n = pr.shape[:2]
            fr = self.embed(pr.flatten(0, 1)).view(b, n, -1)
            with torch.no_grad():
                fc = self.embed(pc.flatten(0, 1)).view(b, n, -1)
            return statistics_divergence(fr, fc, self.divergence).mean()
        fr = self.embed(restored)
        with torch.no_grad():
            fc = self.embed(clean)
        q_restored, q_clean = self.queues
        value = statistics_divergence(q_restored.samples(fr), q_clean.samples(fc), self.divergence)
        if self.training:
            q_restored.push(fr)
            q_clean.push(fc)
        return value

    def forward(self, restored, clean, batch=None):
        l1, terms = super().forward(restored, clean, batch)
        term = self.weight * self.statistics_term(restored, clean)
        terms[self.term_name] = float(term.detach())
        return l1 + term, terms

    def train_state(self) -> dict:
        if self.queues is None or self.queues[0].rows is None:
            return {}
        return {"queue_restored": self.queues[0].rows.cpu(), "queue_clean": self.queues[1].rows.cpu()}

    def load_train_state(self, state: dict) -> None:
        if self.queues is None or not state:
            return super().load_train_state(state)
        self.queues[0].rows, self.queues[1].rows = state["queue_restored"], state["queue_clean"]
