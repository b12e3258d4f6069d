"""Semantic consistency: the mIoU of the segmenter's prediction on the restored image against its own prediction on
the clean image. It needs no labels, so unannotated photos can be scored; 1 means restoration changed no decision of
the segmenter (the clean image's prediction counts as the reference, every pixel of it)."""
from __future__ import annotations

import torch

from bench.metrics.builtin.miou import iou_areas
from bench.metrics.registry import MetricBatch, MetricEnv, register_metric


@register_metric("semantic_consistency", higher_is_better=True, range=(0.0, 1.0), kind="iou",
                 needs=("prediction", "clean_prediction"), head="SC-mIoU", digits=4, tolerance=0.01, order=60,
                 description="mIoU of the segmenter on the restored image against its prediction on the clean image")
def semantic_consistency(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
    """(B, 4, K) areas of the prediction on the restored image against the prediction on the clean image."""
    return iou_areas(batch.prediction, batch.clean_prediction, env.num_classes, ignore_index=-1)
