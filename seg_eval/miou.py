"""mIoU from mmsegmentation's own per-class area helpers (IoUMetric's static methods, no Runner).

The accumulated areas are kept so that mIoU can be recomputed from a results file.
"""
from __future__ import annotations

import numpy as np
import torch

from seg_eval import mmcv_compat  # noqa: F401  (before any mmseg import)

from mmseg.evaluation.metrics import IoUMetric  # noqa: E402


def image_areas(pred: torch.Tensor, reference: torch.Tensor, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """(B, 4, K) float64 per-image areas (intersect, union, predicted, reference) per class, by IoUMetric's
    ``intersect_and_union``; pred, reference: (B, H, W) integer train ids."""
    if pred.shape != reference.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and reference {tuple(reference.shape)} differ in shape")
    out = [torch.stack(IoUMetric.intersect_and_union(p.long(), r.long(), num_classes, ignore_index)).double()
           for p, r in zip(pred, reference, strict=True)]
    return torch.stack(out) if out else torch.zeros((0, 4, num_classes), dtype=torch.float64)


def summarise_areas(areas: np.ndarray) -> dict:
    """From (N, 4, K) per-image areas: "value" (mean IoU over classes with a union, a fraction), "per_class_iou"
    (K, NaN where a class has no union), "pixel_accuracy" and the summed "areas" (intersect, union, pred, label)."""
    total = np.asarray(areas, np.float64).reshape(-1, 4, areas.shape[-1]).sum(0)
    iou = np.asarray(IoUMetric.total_area_to_metrics(*[torch.from_numpy(a) for a in total], metrics=["mIoU"])["IoU"],
                     np.float64)
    return {"value": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"), "per_class_iou": iou,
            "pixel_accuracy": float(total[0].sum() / max(total[3].sum(), 1.0)),
            "areas": {"intersect": total[0].tolist(), "union": total[1].tolist(), "pred": total[2].tolist(),
                      "label": total[3].tolist()}}


class IoUAccumulator:
    """Sums intersection / union / prediction / label areas per class over images."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.areas = np.zeros((4, num_classes), np.float64)  # intersect, union, pred, label
        self.per_image: list[np.ndarray] = []  # (4, num_classes) per image, in update order

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """pred, label: (H, W) or (B, H, W) integer tensors of train ids."""
        if pred.shape != label.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and label {tuple(label.shape)} differ in shape")
        preds, labels = (pred, label) if pred.dim() == 3 else (pred[None], label[None])
        for p, lab in zip(preds, labels, strict=True):
            out = IoUMetric.intersect_and_union(p.long(), lab.long(), self.num_classes, self.ignore_index)
            areas = np.stack([a.numpy() for a in out]).astype(np.float64)
            self.areas += areas
            self.per_image.append(areas)

    def per_class_iou(self) -> np.ndarray:
        """(num_classes,) IoU as a fraction; NaN for classes absent from both labels and predictions."""
        metrics = IoUMetric.total_area_to_metrics(*[torch.from_numpy(a) for a in self.areas], metrics=["mIoU"])
        return np.asarray(metrics["IoU"], np.float64)

    def miou(self) -> float:
        """Mean IoU over classes with a non-empty union, as a fraction (mmseg reports percent)."""
        return float(np.nanmean(self.per_class_iou()))

    def pixel_accuracy(self) -> float:
        return float(self.areas[0].sum() / max(self.areas[3].sum(), 1.0))

    def per_image_dict(self) -> dict:
        """Per image (rows, in update order) and class (columns): intersect and union pixel counts, from which
        mIoU over any subset or resample of the images is recomputed (sum the rows, then divide)."""
        stacked = np.stack(self.per_image) if self.per_image else np.zeros((0, 4, self.num_classes))
        return {"intersect": stacked[:, 0].astype(np.int64).tolist(), "union": stacked[:, 1].astype(np.int64).tolist()}

    def to_dict(self) -> dict:
        return {"intersect": self.areas[0].tolist(), "union": self.areas[1].tolist(),
                "pred": self.areas[2].tolist(), "label": self.areas[3].tolist()}
