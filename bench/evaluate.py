"""Score a restorer at fixed test noise: PSNR and SSIM on the quantised output, then the mIoU that
the suite's frozen segmenter reaches on it.

Every restored image is quantised to uint8 before any metric, exactly as a saved PNG would be,
and the segmenter receives those very bytes in memory.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch

from bench.data import SplitData
from bench.metrics import psnr, ssim
from bench.noise import eval_noise, quantize, to_unit
from bench.protocol import shave
from bench.synthcity.classes import CLASSES

# restore(noisy (B, 3, H, W) float, sigma (B,) on the 0-1 scale) -> (B, 3, H, W) float
RestoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def identity_restore(noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The "noisy input" reference: no restoration at all."""
    return noisy


class RestoredBatch(NamedTuple):
    """One batch of val images at one test sigma: ``idx`` (positions in the split), ``clean`` (B, 3, H, W) in
    [0, 1], ``labels`` (B, H, W) train ids, ``restored`` the restorer's float output (None for the clean
    images themselves), ``out_u8`` (B, 3, H, W) uint8: the output quantised as a saved PNG would be."""

    idx: range
    clean: torch.Tensor
    labels: torch.Tensor
    restored: torch.Tensor | None
    out_u8: torch.Tensor


def restored_batches(restore: RestoreFn | None, val: SplitData, sigma: float, seed: int, device: torch.device,
                     batch: int | None = None, amp: bool = False, protocol: str = "ours",
                     tile: int = 0) -> Iterator[RestoredBatch]:
    """The val images with the fixed test noise of (image id, sigma, seed) (the authors' protocol: their seeding),
    restored batch by batch on ``device``; ``restore=None`` yields the clean images themselves."""
    from bench.protocol import authors_noise
    from bench.tiling import auto_batch, restore_tiled

    if batch is None:  # from the image size: memory stays bounded for full-size images
        h, w = val[0][0].shape[1:] if len(val) else (1, 1)
        batch = auto_batch(h, w)
    if tile and restore is not None:
        whole = restore
        restore = lambda x, s: restore_tiled(whole, x, s, tile)  # noqa: E731

    for idx in _same_size_runs(val, batch):
        clean_u8 = torch.stack([val[i][0] for i in idx])
        labels = torch.stack([val[i][1] for i in idx])
        clean = to_unit(clean_u8)
        if restore is None:
            yield RestoredBatch(idx, clean, labels, None, clean_u8)
            continue
        shape = tuple(clean.shape[1:])
        noise = torch.stack([authors_noise(sigma, shape) if protocol == "authors"
                             else eval_noise(val.samples[i].image_id, sigma, seed, shape) for i in idx])
        level = torch.full((len(idx),), sigma / 255.0)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            restored = restore((clean + noise).to(device), level.to(device)).float()
        yield RestoredBatch(idx, clean, labels, restored, quantize(restored).cpu())


def _same_size_runs(val: SplitData, batch: int) -> Iterator[range]:
    """Consecutive indices of at most ``batch`` images of one size (a split may mix sizes)."""
    size = getattr(val, "image_size", None) or (lambda i: tuple(val[i][0].shape))
    start = 0
    while start < len(val):
        end, first = start + 1, size(start)
        while end < len(val) and end - start < batch and size(end) == first:
            end += 1
        yield range(start, end)
        start = end


def evaluate(restore: RestoreFn | None, val: SplitData, sigmas: tuple[float, ...], seed: int, segmenter,
             device: torch.device, batch: int | None = None, progress: Callable[[int], None] | None = None,
             amp: bool = False, protocol: str = "ours", tile: int = 0) -> dict:
    """Per sigma: mean PSNR/SSIM, mIoU, per-class IoU, IoU areas and per-image values (``protocol`` "authors":
    their noise seeding, PSNR/SSIM on the shaved image; the segmenter always sees the whole image).

    ``restore=None`` scores the clean images themselves (the "clean input" reference row); its
    PSNR is +inf and its SSIM 1 by definition.
    """
    from seg_eval.miou import IoUAccumulator  # OpenMMLab stays inside seg_eval and out of import time

    out: dict[str, dict] = {}
    levels = (0.0,) if restore is None else sigmas
    for sigma in levels:
        t0 = time.time()
        acc = IoUAccumulator(len(CLASSES))
        ids, p_all, s_all = [], [], []
        for b in restored_batches(restore, val, sigma, seed, device, batch, amp, protocol, tile):
            idx, clean, labels, out_u8 = b.idx, b.clean, b.labels, b.out_u8
            scored, reference = shave(to_unit(out_u8), protocol), shave(clean, protocol)
            p_all.append(psnr(scored, reference))
            s_all.append(ssim(scored, reference))
            acc.update(segmenter.predict(out_u8), labels)
            ids += [val.samples[i].image_id for i in idx]
            if progress:
                progress(len(idx))
        per_psnr, per_ssim = torch.cat(p_all), torch.cat(s_all)
        iou = acc.per_class_iou()
        key = "clean" if restore is None else f"{sigma:g}"
        out[key] = {
            "psnr": float(per_psnr.mean()), "ssim": float(per_ssim.mean()), "miou": acc.miou(),
            "pixel_accuracy": acc.pixel_accuracy(),
            "per_class_iou": {c: (None if v != v else float(v)) for c, v in zip(CLASSES, iou, strict=True)},
            "areas": acc.to_dict(),
            "per_image": {"ids": ids, "psnr": per_psnr.tolist(), "ssim": per_ssim.tolist(), **acc.per_image_dict()},
            "seconds": round(time.time() - t0, 2),
        }
    return out
