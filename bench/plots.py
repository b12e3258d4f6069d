"""Figures written next to a report (matplotlib, Agg; PNG).

- ``psnr_vs_miou_sigma<s>.png``: every cell as a point (PSNR, mIoU) at one test sigma, the Pareto
  front (no other cell better in both) drawn through its members;
- ``miou_change_per_class_sigma<s>.png``: per-class IoU of each objective minus that of ``l1`` of the
  same backbone, as a heatmap (classes x objectives);
- ``validation_curves.png``: validation PSNR and mIoU against iterations per cell (the paper's Figure 5,
  D2SM queue sizes included with the ``queue-sizes`` grid), for runs with ``--val-every``;
- ``qualitative_sigma<s>.png``: one val crop, noisy, each cell's restoration and the clean image, each
  with the evaluator's segmentation overlaid (the paper's Figure 4), from the cells' trained weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.base.classes import CLASSES, PALETTE


def pareto_front(points: list[tuple[float, float]], intervals: list[tuple[tuple[float, float], tuple[float, float]]]
                 | None = None) -> list[int]:
    """Indices of the points no other point beats in both coordinates (higher is better), by x. With
    ``intervals`` ((x_low, x_high), (y_low, y_high)) per point, a point is beaten only by one at least as good
    in both coordinates and significantly better in one (its interval above the point's): noise dominates nothing."""
    def beats(j: int, i: int) -> bool:
        (x2, y2), (x, y) = points[j], points[i]
        if not (x2 >= x and y2 >= y and (x2 > x or y2 > y)):
            return False
        if intervals is None:
            return True
        (xj, yj), (xi, yi) = intervals[j], intervals[i]
        return xj[0] > xi[1] or yj[0] > yi[1]

    front = [i for i in range(len(points)) if not any(beats(j, i) for j in range(len(points)) if j != i)]
    return sorted(front, key=lambda i: points[i][0])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cells(results: list[dict], cell_ids: set[str] | None) -> list[dict]:
    return [r for r in results if r.get("kind") == "cell" and (cell_ids is None or r["cell_id"] in cell_ids)]


def plot_psnr_vs_miou(results: list[dict], sigma: str, out: Path, cell_ids: set[str] | None = None,
                      long=None) -> Path:
    """Every row of the table at one sigma: mean PSNR and mIoU with their 95 % bootstrap intervals as error bars,
    and the Pareto front that only counts a point as dominated when the difference is significant."""
    from bench.report import table_frame

    plt = _pyplot()
    long = table_frame(results, cell_ids) if long is None else long
    at = long[(long["kind"] == "cell") & (long["sigma"] == sigma)]
    rows = []
    for (backbone, label), g in at.groupby(["backbone", "label"], sort=False):
        by = g.set_index("metric")
        if {"psnr", "miou"} <= set(by.index):
            rows.append((f"{backbone}/{label}", by.loc["psnr"], by.loc["miou"]))
    pts = [(float(p["value"]), float(m["value"])) for _, p, m in rows]

    def interval(r) -> tuple[float, float]:
        low, high = r.get("ci_low"), r.get("ci_high")
        return (float(low), float(high)) if low == low and high == high and low is not None else (r["value"],) * 2

    ivs = [(interval(p), interval(m)) for _, p, m in rows]
    fig, ax = plt.subplots(figsize=(7, 5))
    for (name, _, _), (x, y), ((xl, xh), (yl, yh)) in zip(rows, pts, ivs, strict=True):
        ax.errorbar(x, y, xerr=[[x - xl], [xh - x]], yerr=[[y - yl], [yh - y]], fmt="o", ms=4, capsize=2, lw=0.8)
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(pts, ivs)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1,
                label="Pareto front (dominated only when significant)")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel(f"PSNR (dB) at sigma {sigma}, 95 % bootstrap interval")
    ax.set_ylabel(f"mIoU at sigma {sigma}, 95 % bootstrap interval")
    ax.set_title("Restoration fidelity vs. semantics kept")
    ax.grid(alpha=0.3)
    path = out / f"psnr_vs_miou_sigma{sigma}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def class_iou_changes(results: list[dict], sigma: str, cell_ids: set[str] | None = None, n_boot: int = 2000
                      ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(row names, change (C, R) of per-class IoU vs the same backbone's l1, significant (C, R) booleans): the
    change's 95 % paired bootstrap interval (same images, seeds within rows) excludes 0."""
    from bench.frame import image_frame
    from bench.report import row_samples
    from bench.stats import image_weights

    cells = [r for r in _cells(results, cell_ids) if sigma in r["metrics"]]
    images = image_frame(cells)
    images = images[images["sigma"] == sigma]
    names, changes, significant = [], [], []
    rng = np.random.default_rng(0)
    for backbone, group in images.groupby("backbone", sort=False):
        rows = row_samples(group, "miou")
        if "l1" not in rows:
            continue
        n = rows["l1"].areas.shape[1]
        w = image_weights(n, n_boot, rng)

        def per_class(sample, weights):
            s, n_img, _, c = sample.areas.shape
            sums = (weights @ sample.areas.reshape(s, n_img, 2 * c)).reshape(s, -1, 2, c).mean(0)  # (B, 2, C)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(sums[:, 1] > 0, sums[:, 0] / sums[:, 1], np.nan)  # (B, C)

        ref_all, ref_boot = per_class(rows["l1"], np.ones((1, n)))[0], per_class(rows["l1"], w)
        for label, sample in rows.items():
            if label == "l1":
                continue
            diff = per_class(sample, w) - ref_boot
            low, high = np.nanpercentile(diff, 2.5, axis=0), np.nanpercentile(diff, 97.5, axis=0)
            names.append(f"{backbone}/{label}")
            changes.append(per_class(sample, np.ones((1, n)))[0] - ref_all)
            significant.append((low > 0) | (high < 0))
    if not names:
        return [], np.zeros((len(CLASSES), 0)), np.zeros((len(CLASSES), 0), bool)
    return names, np.array(changes).T, np.array(significant).T


def plot_class_iou_change(results: list[dict], sigma: str, out: Path, cell_ids: set[str] | None = None
                          ) -> Path | None:
    """Per-class IoU of each objective minus ``l1``'s (same backbone) as a heatmap; a dot marks the changes whose
    95 % paired bootstrap interval excludes 0."""
    plt = _pyplot()
    labels, data, significant = class_iou_changes(results, sigma, cell_ids)
    if not labels:
        return None
    lim = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.6 * len(labels)), 7))
    im = ax.imshow(data, cmap="RdBu", vmin=-(lim or 1.0), vmax=lim or 1.0, aspect="auto")
    ys, xs = np.nonzero(significant)
    ax.scatter(xs, ys, s=8, c="k", marker="o", label="95 % interval excludes 0")
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), fontsize=7)
    fig.colorbar(im, ax=ax, label=f"IoU change vs l1 at sigma {sigma}")
    path = out / f"miou_change_per_class_sigma{sigma}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _overlay(rgb_u8: np.ndarray, pred: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    colours = np.zeros((256, 3), np.float32)
    colours[: len(PALETTE)] = np.asarray(PALETTE, np.float32)
    return ((1 - alpha) * rgb_u8.astype(np.float32) + alpha * colours[pred]).astype(np.uint8)


def plot_qualitative(results: list[dict], ctx, sigma: str, out: Path, cell_ids: set[str] | None = None,
                     image_index: int = 0) -> Path:
    """Needs the cells' ``train.pth`` and a runner Context (val data, segmenter)."""
    import torch

    from bench.base.noise import eval_noise, quantize, to_unit
    from bench.cell_state import CHECKPOINT_FILE
    from bench.trained import load_trained_denoiser

    plt = _pyplot()
    clean_u8, _ = ctx.val[image_index]
    image_id = ctx.val.samples[image_index].image_id
    clean = to_unit(clean_u8)[None]
    cells = _cells(results, cell_ids)
    seed = cells[0]["config"]["seed"] if cells else 0
    noisy = clean + eval_noise(image_id, float(sigma), seed, tuple(clean.shape[1:]))[None]
    panels = [("noisy", quantize(noisy)[0])]
    for r in cells:
        ckpt = Path(r["_path"]).parent / CHECKPOINT_FILE
        if not ckpt.is_file():
            continue
        model = load_trained_denoiser(r["config"], ckpt)
        with torch.no_grad():
            restored = model.restore(noisy, torch.tensor([float(sigma) / 255.0]))
        panels.append((f"{r['config']['backbone']}/{r['config']['objective']}", quantize(restored)[0]))
    panels.append(("clean", clean_u8))
    preds = ctx.segmenter.predict(torch.stack([p for _, p in panels]))
    n = len(panels)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, img), pred in zip(axes.flat, panels, preds, strict=False):
        ax.imshow(_overlay(img.permute(1, 2, 0).numpy(), pred.numpy()))
        ax.set_title(title, fontsize=8)
    path = out / f"qualitative_sigma{sigma}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_validation_curves(results: list[dict], out: Path, cell_ids: set[str] | None = None) -> Path | None:
    """Validation PSNR and mIoU against iterations per cell (the paper's Figure 5); needs runs with --val-every."""

    cells = [r for r in _cells(results, cell_ids) if r.get("train", {}).get("curve")]
    if not cells:
        return None
    plt = _pyplot()
    fig, (ax_p, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    for r in cells:
        curve = r["train"]["curve"]
        label = f"{r['config']['backbone']}/{r['label']}"
        its = [p["iteration"] for p in curve]
        ax_p.plot(its, [p["psnr"] for p in curve], marker=".", label=label)
        ax_m.plot(its, [p["miou"] for p in curve], marker=".", label=label)
    ax_p.set_ylabel("validation PSNR (dB), sigma 50")
    ax_m.set_ylabel("validation mIoU, sigma 50")
    for ax in (ax_p, ax_m):
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    ax_m.legend(fontsize=7)
    path = out / "validation_curves.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_plots(results: list[dict], out: Path, cell_ids: set[str] | None = None, ctx=None) -> list[Path]:
    """Every figure for every test sigma (the qualitative one at the largest sigma, when ``ctx`` is given)."""
    out.mkdir(parents=True, exist_ok=True)
    cells = _cells(results, cell_ids)
    sigmas = sorted({s for r in cells for s in r["metrics"]}, key=float)
    paths: list[Path] = []
    from bench.report import table_frame

    long = table_frame(results, cell_ids)
    for s in sigmas:
        paths.append(plot_psnr_vs_miou(results, s, out, cell_ids, long))
        heat = plot_class_iou_change(results, s, out, cell_ids)
        if heat:
            paths.append(heat)
    curves = plot_validation_curves(results, out, cell_ids)
    if curves:
        paths.append(curves)
    if ctx is not None and sigmas:
        paths.append(plot_qualitative(results, ctx, sigmas[-1], out, cell_ids))
    return paths
