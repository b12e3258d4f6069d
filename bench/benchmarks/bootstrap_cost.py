"""Time of the report's bootstrap for a full grid, and its ratio to a plain per-resample loop.

    python -m bench.benchmarks.bootstrap_cost [--resamples 2000] [--seeds 1] [--loop-resamples 200]

Synthetic results shaped like the ``full`` grid (3 backbones x 11 objectives, 96 val images, 3 test sigmas,
per-image PSNR/SSIM and per-class areas): the time of ``bench.report.table_frame`` (frames, every group's
paired bootstrap, letters), then, on the same data, the vectorised statistics of one group against a Python
loop over resamples (the loop runs ``--loop-resamples`` and is scaled to ``--resamples``). Not a test.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench.base.classes import CLASSES


def synthetic_results(backbones: int = 3, objectives: int = 11, seeds: int = 1, images: int = 96,
                      sigmas: tuple[str, ...] = ("25", "35", "50"), seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(backbones):
        for o in range(objectives):
            label = "l1" if o == 0 else f"obj{o}"
            for s in range(seeds):
                metrics = {}
                for sigma in sigmas:
                    union = rng.integers(100, 1000, (images, len(CLASSES)))
                    inter = (union * rng.uniform(0.3, 0.8, (images, len(CLASSES)))).astype(int)
                    psnr = rng.normal(25 + 0.1 * o, 1.0, images)
                    ssim = rng.normal(0.8, 0.02, images)
                    metrics[sigma] = {"psnr": float(psnr.mean()), "ssim": float(ssim.mean()), "miou": 0.5,
                                      "per_image": {"ids": [f"i{i:03d}" for i in range(images)], "psnr": psnr.tolist(),
                                                    "ssim": ssim.tolist(), "intersect": inter.tolist(),
                                                    "union": union.tolist()}}
                out.append({"kind": "cell", "cell_id": f"b{b}-{label}-{s}", "slug": f"b{b}__{label}__s{s}",
                            "label": label, "seed": s, "config": {"backbone": f"b{b}", "objective": label},
                            "metrics": metrics})
    return out


def loop_statistics(areas: list[np.ndarray], values: list[np.ndarray], n_boot: int, seed: int = 0) -> float:
    """The same statistics, one resample at a time (index draw, mIoU per row, PSNR mean per row): seconds."""
    rng = np.random.default_rng(seed)
    n = len(values[0])
    t0 = time.perf_counter()
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        for a, v in zip(areas, values, strict=True):
            s = a[idx].sum(0)
            with np.errstate(invalid="ignore", divide="ignore"):
                np.nanmean(np.where(s[1] > 0, s[0] / s[1], np.nan))
            v[idx].mean()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    from bench.report import table_frame
    from bench.stats import RowSample, image_weights, resample_row

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--loop-resamples", type=int, default=200)
    args = p.parse_args(argv)
    results = synthetic_results(seeds=args.seeds)
    t0 = time.perf_counter()
    long = table_frame(results, n_boot=args.resamples)
    total = time.perf_counter() - t0
    print(f"table_frame on a full-grid-shaped result set (33 cells x {args.seeds} seeds x 3 sigmas x 3 metrics, "
          f"96 images, {args.resamples} resamples): {total:.2f} s ({len(long)} table values)")

    group = [r for r in results if r["config"]["backbone"] == "b0"]
    areas = [np.stack([np.asarray(r["metrics"]["25"]["per_image"]["intersect"]),
                       np.asarray(r["metrics"]["25"]["per_image"]["union"])], 1) for r in group]  # (N, 2, C)
    values = [np.asarray(r["metrics"]["25"]["per_image"]["psnr"]) for r in group]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    w = image_weights(len(values[0]), args.resamples, rng)
    for a, v in zip(areas, values, strict=True):
        resample_row(RowSample(areas=a[None]), w, rng)
        resample_row(RowSample(values=v[None]), w, rng)
    vectorised = time.perf_counter() - t0
    loop = loop_statistics(areas, values, args.loop_resamples) * args.resamples / args.loop_resamples
    print(f"one group (11 rows, mIoU + PSNR, {args.resamples} resamples): vectorised {vectorised * 1000:.0f} ms, "
          f"per-resample loop {loop * 1000:.0f} ms (scaled from {args.loop_resamples}): {loop / vectorised:.1f}x")


if __name__ == "__main__":
    main()
