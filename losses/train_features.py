"""Train the embedded suite's "pretrained classification network": a reduced-width VGG19 on synthcity.

Task: multi-label classification of random crops (which of the 19 classes a crop shows), the
closest thing to ImageNet classification that synthcity offers. The network trains with batch
norm after every convolution (a 16-layer plain VGG is slow to train from scratch) and the norms
are folded into the convolutions afterwards, so the result is a plain VGG19 trunk with the very
layer names and module indices of torchvision's, as the losses expect. Every batch is a pure
function of (seed, iteration).
"""
from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bench.base.atomic import atomic_write_bytes
from bench.base.crops import crop_generator, random_crops
from bench.base.noise import to_unit
from bench.base.optim import SmoothedStep, warmup_cosine
from losses.vgg import STAGES, VGGFeatures, stage_widths

FEATURE_NET_VERSION = 1  # bump when this file or losses/vgg.py changes what the weights compute


@dataclass(frozen=True)
class FeatureTrainSpec:
    width: float = 0.25
    iterations: int = 1000
    batch: int = 32
    crop: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    min_pixels: int = 16  # a class is "in" a crop when it covers at least this many pixels
    seed: int = 0


class _BNTrunk(nn.Module):
    """VGG19 with BN after each conv and a linear multi-label head on the pooled relu5_4."""

    def __init__(self, width: float, num_classes: int) -> None:
        super().__init__()
        self.vgg = VGGFeatures(width)
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for n, c in zip(STAGES, stage_widths(width), strict=True)
                                   for _ in range(n))
        self.head = nn.Linear(stage_widths(width)[-1], num_classes)
        for m in self.vgg.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.vgg.mean) / self.vgg.std
        convs = 0
        for m in self.vgg.features[:-1]:  # up to relu5_4
            h = m(h)
            if isinstance(m, nn.Conv2d):
                h = self.norms[convs](h)
                convs += 1
        return self.head(h.mean((2, 3)))

    def folded(self) -> VGGFeatures:
        """A plain VGGFeatures computing what this trunk computes in eval mode."""
        out = VGGFeatures(self.vgg.width)
        convs = [m for m in self.vgg.features if isinstance(m, nn.Conv2d)]
        targets = [m for m in out.features if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            for conv, bn, tgt in zip(convs, self.norms, targets, strict=True):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                tgt.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                tgt.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
        return out.eval()


def presence(labels: torch.Tensor, num_classes: int, min_pixels: int) -> torch.Tensor:
    """labels (B, H, W) train ids -> (B, num_classes) float 0/1: classes covering >= min_pixels."""
    one_hot = torch.stack([(labels == k).flatten(1).sum(1) for k in range(num_classes)], 1)
    return (one_hot >= min_pixels).float()


def evaluate_presence(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, spec: FeatureTrainSpec,
                      num_classes: int, batches: int = 8) -> dict:
    """Macro F1 and per-label accuracy of presence at threshold 0.5 on fixed val crops."""
    tp = fp = fn = torch.zeros(num_classes)
    correct = total = 0
    with torch.no_grad():
        for b in range(batches):
            crops, labs = random_crops(images, labels, spec.batch, spec.crop, crop_generator(spec.seed + 99, b))
            pred = net(to_unit(crops)) > 0
            truth = presence(labs, num_classes, spec.min_pixels) > 0
            tp = tp + (pred & truth).sum(0)
            fp = fp + (pred & ~truth).sum(0)
            fn = fn + (~pred & truth).sum(0)
            correct += int((pred == truth).sum())
            total += truth.numel()
    seen = (tp + fn) > 0
    f1 = (2 * tp / (2 * tp + fp + fn).clamp_min(1))[seen]
    return {"val_macro_f1": round(float(f1.mean()), 4), "val_label_accuracy": round(correct / total, 4)}


def train_feature_network(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                          out: Path, spec: FeatureTrainSpec = FeatureTrainSpec(), num_classes: int = 19,
                          log: Callable[[str], None] = print) -> dict:
    """Train on (images (N, 3, H, W) uint8, labels (N, H, W) uint8); write VGGFeatures weights to ``out``."""
    torch.manual_seed(spec.seed)
    net = _BNTrunk(spec.width, num_classes).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    step = SmoothedStep(opt, warmup_cosine(opt, spec.iterations), "feature network", spec.iterations, 100, log)
    bce = nn.BCEWithLogitsLoss()
    images, labels = train
    t0 = time.time()
    for it in range(spec.iterations):
        crops, labs = random_crops(images, labels, spec.batch, spec.crop, crop_generator(spec.seed, it))
        x = to_unit(crops).contiguous(memory_format=torch.channels_last)
        loss = bce(net(x), presence(labs, num_classes, spec.min_pixels))
        step(loss, it, time.time() - t0)
    net.eval()
    quality = evaluate_presence(net, *val, spec, num_classes)
    vgg = net.folded()
    buf = io.BytesIO()
    torch.save({"meta": {"width": spec.width, "train": asdict(spec)},
                "state_dict": {k: v.contiguous() for k, v in vgg.state_dict().items()}}, buf)
    atomic_write_bytes(out, buf.getvalue())
    return {"train": asdict(spec), "seconds": round(time.time() - t0, 1), **quality,
            "parameters": sum(p.numel() for p in vgg.parameters())}
