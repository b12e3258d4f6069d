"""Train the synthcity suite's evaluator: an mmseg config trained on clean synthcity train images.

A plain PyTorch loop over mmseg's own model API (``model(inputs, data_samples, mode='loss')``).
Every batch is a pure function of (seed, iteration), so the run is reproducible. The checkpoint
holds only tensors and plain Python (loadable with ``weights_only=True``) in mmengine's layout
(``{'meta': {...}, 'state_dict': {...}}``).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.base.atomic import atomic_write_bytes
from bench.base.classes import CLASSES, PALETTE
from bench.base.data import SplitData
from bench.base.optim import SmoothedStep, warmup_cosine
from seg_eval import mmcv_compat  # noqa: F401
from seg_eval.segmenter import load_config, quiet_mmengine


@dataclass(frozen=True)
class SegTrainSpec:
    iterations: int = 1200
    batch: int = 8
    crop: int = 128
    lr: float = 4e-3
    weight_decay: float = 1e-4
    seed: int = 0
    balance_classes: bool = True  # CE weighted by sqrt(median frequency / frequency), clipped to [0.25, 4]


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> list[float]:
    """Per-class CE weights from train-label pixel frequencies (ignore 255 excluded); 1 for absent classes."""
    counts = torch.bincount(labels.flatten().long(), minlength=256)[:num_classes].double()
    present = counts > 0
    freq = counts / counts.sum()
    median = freq[present].median()
    w = torch.ones(num_classes, dtype=torch.float64)
    w[present] = (median / freq[present]).sqrt().clamp(0.25, 4.0)
    return [round(float(v), 4) for v in w]


def _batch(images: torch.Tensor, labels: torch.Tensor, spec: SegTrainSpec, it: int):
    """A random batch of crops with horizontal flips, drawn from (seed, it) alone."""
    g = torch.Generator().manual_seed(spec.seed * 1_000_003 + it)
    n, _, h, w = images.shape
    idx = torch.randint(0, n, (spec.batch,), generator=g)
    ch, cw = min(spec.crop, h), min(spec.crop, w)
    ys = torch.randint(0, h - ch + 1, (spec.batch,), generator=g)
    xs = torch.randint(0, w - cw + 1, (spec.batch,), generator=g)
    flips = torch.rand(spec.batch, generator=g) < 0.5
    imgs, labs = [], []
    for i, y, x, f in zip(idx.tolist(), ys.tolist(), xs.tolist(), flips.tolist(), strict=True):
        im, lb = images[i, :, y:y + ch, x:x + cw], labels[i, y:y + ch, x:x + cw]
        if f:
            im, lb = im.flip(-1), lb.flip(-1)
        imgs.append(im)
        labs.append(lb)
    return imgs, labs


def train_segmenter(config: Path, data_root: Path, out: Path, spec: SegTrainSpec = SegTrainSpec(),
                    log: Callable[[str], None] = print) -> dict:
    """Train ``config`` on ``data_root``'s clean train split; write the checkpoint to ``out``."""
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    torch.manual_seed(spec.seed)
    cfg = load_config(config)
    init_default_scope(cfg.get("default_scope", "mmseg"))
    train = SplitData(data_root, "train")
    images = torch.stack([train[i][0] for i in range(len(train))])
    labels = torch.stack([train[i][1] for i in range(len(train))])
    weights = balanced_class_weights(labels, len(CLASSES)) if spec.balance_classes else None
    if weights is not None:
        cfg.model.decode_head.loss_decode.class_weight = weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MODELS.build(cfg.model)
        with quiet_mmengine():
            model.init_weights()
    model = model.to(memory_format=torch.channels_last).train()
    bgr = bool(cfg.model.data_preprocessor.get("bgr_to_rgb", False))

    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    step = SmoothedStep(opt, warmup_cosine(opt, spec.iterations), "segmenter", spec.iterations, 50, log)
    t0 = time.time()
    for it in range(spec.iterations):
        imgs, labs = _batch(images, labels, spec, it)
        samples = []
        for lb in labs:
            s = SegDataSample(gt_sem_seg=PixelData(data=lb[None].long()))
            s.set_metainfo({"img_shape": tuple(lb.shape), "ori_shape": tuple(lb.shape), "pad_shape": tuple(lb.shape)})
            samples.append(s)
        data = model.data_preprocessor({"inputs": [im.flip(0) if bgr else im for im in imgs],
                                        "data_samples": samples}, True)
        losses = model(data["inputs"].contiguous(memory_format=torch.channels_last), data["data_samples"], mode="loss")
        loss, _ = model.parse_losses(losses)
        step(loss, it, time.time() - t0)
    model.eval()
    meta = {"dataset_meta": {"classes": list(CLASSES), "palette": [list(p) for p in PALETTE]},
            "config": Path(config).name, "train": asdict(spec), "class_weight": weights, "seconds": round(time.time() - t0, 1)}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    import io

    buf = io.BytesIO()
    torch.save({"meta": meta, "state_dict": state}, buf)
    atomic_write_bytes(out, buf.getvalue())
    return meta
