"""Score a restorer at fixed test noise with the chosen metrics (``bench.metrics``: PSNR and SSIM on the quantised
output, the mIoU that the suite's frozen segmenter reaches on it, and any other registered metric).

Every restored image is quantised to uint8 before any metric, exactly as a saved PNG would be,
and the segmenter receives those very bytes in memory.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import torch

from bench.base.classes import CLASSES
from bench.base.data import SplitData
from bench.base.errors import BenchError
from bench.base.noise import eval_noise_seed, quantize, to_unit
from bench.degradations import DEFAULT_DEGRADATION, Degradation, build_degradation
from bench.degradations.builtin.gaussian import Gaussian
from bench.metrics import DEFAULT_METRICS, MetricBatch, MetricEnv, MetricSpec, metric_specs
from bench.protocol import shave

# restore(noisy (B, 3, H, W) float, sigma (B,) on the 0-1 scale) -> (B, 3, H, W) float
RestoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def identity_restore(noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The "noisy input" reference: no restoration at all."""
    return noisy


class RestoredBatch(NamedTuple):
    """One batch of val images at one test sigma: ``idx`` (positions in the split), ``clean`` (B, 3, H, W) in
    [0, 1], ``labels`` (B, H, W) train ids, ``restored`` the restorer's float output (None for the clean
    images themselves), ``out_u8`` (B, 3, H, W) uint8: the output quantised as a saved PNG would be, ``clean_u8`` the clean image's bytes."""

    idx: range
    clean: torch.Tensor
    labels: torch.Tensor
    restored: torch.Tensor | None
    out_u8: torch.Tensor
    clean_u8: torch.Tensor


def restored_batches(restore: RestoreFn | None, val: SplitData, sigma: float, seed: int, device: torch.device,
                     batch: int | None = None, amp: bool = False, protocol: str = "ours",
                     tile: int = 0, degradation: Degradation | None = None) -> Iterator[RestoredBatch]:
    """The val images with the fixed test degradation of (image id, level ``sigma``, seed) (``degradation``:
    Gaussian noise unless given; the authors' protocol: their Gaussian seeding), restored batch by batch on
    ``device``; ``restore=None`` yields the clean images themselves."""
    from bench.protocol import authors_noise
    from bench.tiling import auto_batch, restore_tiled

    deg = degradation or build_degradation(DEFAULT_DEGRADATION)
    if protocol == "authors" and not isinstance(deg, Gaussian):
        raise BenchError("--protocol authors draws the authors' Gaussian test noise: it cannot score another "
                         "degradation")
    if batch is None:  # from the image size: memory stays bounded for full-size images
        h, w = val[0][0].shape[1:] if len(val) else (1, 1)
        batch = auto_batch(h, w)
    outside = restore is not None and callable(getattr(restore, "for_images", None))  # restored elsewhere (PNGs)
    if tile and restore is not None and not outside:
        whole = restore
        restore = lambda x, s: restore_tiled(whole, x, s, tile)  # noqa: E731

    for idx in _same_size_runs(val, batch):
        clean_u8 = torch.stack([val[i][0] for i in idx])
        labels = torch.stack([val[i][1] for i in idx])
        clean = to_unit(clean_u8)
        if restore is None:
            yield RestoredBatch(idx, clean, labels, None, clean_u8, clean_u8)
            continue
        if outside:
            restored = restore.for_images([val.samples[i].image_id for i in idx], sigma)
            yield RestoredBatch(idx, clean, labels, restored, quantize(restored), clean_u8)
            continue
        if protocol == "authors":
            noisy = clean + torch.stack([authors_noise(sigma, tuple(clean.shape[1:])) for _ in idx])
            level = torch.full((len(idx),), sigma / 255.0)
        else:
            draws = [deg.draw_test(clean[j], sigma, input_generator(val.samples[i].image_id, sigma, seed))
                     for j, i in enumerate(idx)]
            noisy, level = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            restored = restore(noisy.to(device), level.to(device))
        restored = _checked_output(restored, noisy)
        yield RestoredBatch(idx, clean, labels, restored, quantize(restored).cpu(), clean_u8)


def _checked_output(restored, noisy: torch.Tensor) -> torch.Tensor:
    """The restorer's output as float, refused in one line unless a finite tensor of the input's shape (a wrong shape
    would broadcast into a plausible PSNR; NaN would quantise to black)."""
    if not isinstance(restored, torch.Tensor) or tuple(restored.shape) != tuple(noisy.shape):
        got = tuple(restored.shape) if isinstance(restored, torch.Tensor) else type(restored).__name__
        raise BenchError(f"the restorer returned {got} for inputs of shape {tuple(noisy.shape)}: restore(noisy, "
                         "sigma) must return a (B, 3, H, W) tensor of the input's size")
    restored = restored.float()
    if not bool(torch.isfinite(restored).all()):
        raise BenchError("the restorer returned non-finite values (NaN or inf): its weights or arithmetic are broken")
    return restored


def input_generator(image_id: str, level: float, seed: int) -> torch.Generator:
    """The generator of one val image's test input: seeded by (image id, level, seed) alone (``bench.base.noise``), so
    the input is the same whatever the batch or the order (every degradation draws from it: paired across them)."""
    return torch.Generator().manual_seed(eval_noise_seed(image_id, level, seed))


def image_shape(val: SplitData, i: int) -> tuple[int, ...]:
    """(3, H, W) of val image ``i``, without decoding it where the split knows its sizes (the decoded cache)."""
    size = getattr(val, "image_size", None)
    return tuple(size(i)) if size is not None else tuple(val[i][0].shape)


def _same_size_runs(val: SplitData, batch: int) -> Iterator[range]:
    """Consecutive indices of at most ``batch`` images of one size (a split may mix sizes)."""
    start = 0
    while start < len(val):
        end, first = start + 1, image_shape(val, start)
        while end < len(val) and end - start < batch and image_shape(val, end) == first:
            end += 1
        yield range(start, end)
        start = end


def evaluate(restore: RestoreFn | None, val: SplitData, sigmas: tuple[float, ...], seed: int, segmenter,
             device: torch.device, batch: int | None = None, progress: Callable[[int], None] | None = None,
             amp: bool = False, protocol: str = "ours", tile: int = 0, metrics: Iterable[str] = DEFAULT_METRICS,
             resources=None, degradation: Degradation | None = None) -> dict:
    """Per sigma: each metric of ``metrics`` (registered names, ``bench.metrics``) and its per-image values, the
    seconds it took; an iou-kind metric adds its per-class IoU, pixel accuracy and summed areas (mIoU's as
    ``per_class_iou``, ``pixel_accuracy``, ``areas``; another's under its name). ``protocol`` "authors": their noise
    seeding, image metrics on the shaved image; the segmenter always sees the whole image. ``resources``: the
    networks a metric may need (``losses.base.Resources``); ``degradation`` what the test inputs have (``sigmas``
    are its levels; Gaussian noise unless given).

    ``restore=None`` scores the clean images themselves (the "clean input" reference row, keyed "clean"); its
    PSNR is +inf and its SSIM 1 by definition.
    """
    specs = metric_specs(metrics)
    needs = {n for s in specs for n in s.needs}
    env = MetricEnv(resources, device, len(CLASSES))
    out: dict[str, dict] = {}
    levels = (0.0,) if restore is None else sigmas
    for sigma in levels:
        t0 = time.time()
        ids: list[str] = []
        parts: dict[str, list[torch.Tensor]] = {s.name: [] for s in specs}
        for b in restored_batches(restore, val, sigma, seed, device, batch, amp, protocol, tile, degradation):
            pred = segmenter.predict(b.out_u8) if "prediction" in needs else None
            clean_u8 = b.clean_u8
            if "clean_prediction" in needs:
                clean_pred = pred if b.restored is None and pred is not None else segmenter.predict(clean_u8)
            else:
                clean_pred = None
            mb = MetricBatch(shave(to_unit(b.out_u8), protocol), shave(b.clean, protocol), b.out_u8, clean_u8,
                             b.labels, pred, clean_pred)
            for s in specs:
                parts[s.name].append(_checked(s, s.compute(mb, env), len(b.idx)))
            ids += [val.samples[i].image_id for i in b.idx]
            if progress:
                progress(len(b.idx))
        key = "clean" if restore is None else f"{sigma:g}"
        out[key] = _aggregate(specs, parts, ids, env)
        out[key]["seconds"] = round(time.time() - t0, 2)
    return out


def _checked(spec: MetricSpec, value: torch.Tensor, n: int) -> torch.Tensor:
    """A metric's per-batch output, of the shape its kind promises (a plugin's mistake named, not averaged)."""
    value = torch.as_tensor(value).detach().cpu()
    want = (n,) if spec.kind == "mean" else (n, 4)
    if tuple(value.shape[:len(want)]) != want or value.dim() != (1 if spec.kind == "mean" else 3):
        shape = "(B,)" if spec.kind == "mean" else "(B, 4, num_classes)"
        raise BenchError(f"metric {spec.name} returned a tensor of shape {tuple(value.shape)} for {n} images; a "
                         f"{spec.kind}-kind metric returns {shape}")
    return value.double() if spec.kind == "iou" else value.float()


def _aggregate(specs: tuple[MetricSpec, ...], parts: dict[str, list[torch.Tensor]], ids: list[str],
               env: MetricEnv) -> dict:
    from seg_eval.miou import summarise_areas  # OpenMMLab stays inside seg_eval and out of import time

    level: dict = {}
    per_image: dict = {"ids": ids}
    for s in specs:
        values = torch.cat(parts[s.name]) if parts[s.name] else torch.zeros((0,) if s.kind == "mean" else (0, 4, 0))
        if s.kind == "mean":
            level[s.name] = float(values.mean()) if len(values) else float("nan")
            per_image[s.name] = values.tolist()
            continue
        summary = summarise_areas(values.numpy())
        prefix = "" if s.areas_prefix == "" else f"{s.name}."
        level[s.name] = summary["value"]
        level[prefix + "pixel_accuracy"] = summary["pixel_accuracy"]
        level[prefix + "per_class_iou"] = {c: (None if v != v else float(v))
                                           for c, v in zip(CLASSES, summary["per_class_iou"], strict=True)}
        level[prefix + "areas"] = summary["areas"]
        inter, union = s.area_keys
        per_image[inter] = values[:, 0].long().tolist()
        per_image[union] = values[:, 1].long().tolist()
    level["per_image"] = per_image
    return level


def metric_descriptions(metrics: Iterable[str], resources=None, device: torch.device | None = None) -> dict[str, str]:
    """{name: what measured it} of ``metrics``, as a result records it (the LPIPS network's name, say)."""
    env = MetricEnv(resources, device or torch.device("cpu"), len(CLASSES))
    return {s.name: s.describe(env) for s in metric_specs(metrics)}
