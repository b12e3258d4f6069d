"""Task-driven objective: cross-entropy of the suite's frozen segmenter on the restored image.

L1 + w * CE(segmenter(restored), labels), ignore index 255, mean over labelled pixels. The
segmenter is the evaluator itself (its weights frozen, in eval mode), the natural reading of the
paper's "cross-entropy" row; the gradient reaches the restored image through it.
"""
from __future__ import annotations

import torch.nn.functional as F

from losses.pixel import L1Objective
from losses.registry import register_objective


@register_objective("cross_entropy", "L1 + w CE of the frozen segmenter on the restored image", order=50)
class CrossEntropyObjective(L1Objective):
    exact_arithmetic = False  # not verified to round alike on every machine (bench.base.exact)
    needs = frozenset({"segmenter"})
    uses_labels = True

    def __init__(self, segmenter, weight: float = 0.003, l1_weight: float = 1.0, **noise_terms) -> None:
        super().__init__(l1_weight, **noise_terms)
        self.use_frozen(segmenter=segmenter)
        self.weight = weight

    def forward(self, restored, clean, batch=None):
        if batch is None or batch.get("labels") is None:
            raise ValueError("cross_entropy needs the crops' train-id labels in batch['labels'] (B, H, W)")
        l1, terms = super().forward(restored, clean, batch)
        logits = self.segmenter.logits(restored)
        term = self.weight * F.cross_entropy(logits, batch["labels"].to(logits.device), ignore_index=255)
        terms["cross_entropy"] = float(term.detach())
        return l1 + term, terms
