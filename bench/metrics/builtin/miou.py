"""mIoU of the frozen segmenter on the 8-bit output against the labels (mmsegmentation's area helpers)."""
from __future__ import annotations

import torch

from bench.metrics.registry import MetricBatch, MetricEnv, register_metric


def iou_areas(pred: torch.Tensor, reference: torch.Tensor, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """(B, 4, K) float64 per-image areas (intersect, union, predicted, reference) per class, by mmsegmentation's
    ``IoUMetric.intersect_and_union``; pred, reference (B, H, W) integer train ids."""
    from seg_eval.miou import image_areas  # OpenMMLab stays inside seg_eval and out of import time

    return image_areas(pred, reference, num_classes, ignore_index)


@register_metric("miou", higher_is_better=True, range=(0.0, 1.0), kind="iou", needs=("prediction", "labels"),
                 head="mIoU", digits=4, tolerance=0.01, order=50, areas_prefix="",
                 description="mIoU of the suite's frozen segmenter against the labels (classes with a union)")
def miou(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
    """(B, 4, K) areas of the prediction on the restored image against the labels."""
    return iou_areas(batch.prediction, batch.labels, env.num_classes)
