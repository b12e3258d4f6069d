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

from bench.synthcity.classes import CLASSES, PALETTE


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (higher is better), by x."""
    front = [i for i, (x, y) in enumerate(points)
             if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points)]
    return sorted(front, key=lambda i: points[i][0])


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cells(results: list[dict], cell_ids: set[str] | None) -> list[dict]:
    return [r for r in results if r.get("kind") == "cell" and (cell_ids is None or r["cell_id"] in cell_ids)]


def plot_psnr_vs_miou(results: list[dict], sigma: str, out: Path, cell_ids: set[str] | None = None) -> Path:
    plt = _pyplot()
    cells = [r for r in _cells(results, cell_ids) if sigma in r["metrics"]]
    pts = [(r["metrics"][sigma]["psnr"], r["metrics"][sigma]["miou"]) for r in cells]
    fig, ax = plt.subplots(figsize=(7, 5))
    for r, (x, y) in zip(cells, pts, strict=True):
        ax.scatter(x, y, s=30)
        ax.annotate(f"{r['config']['backbone']}/{r['config']['objective']}", (x, y), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    front = pareto_front(pts)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, label="Pareto front")
        ax.legend(loc="lower right")
    ax.set_xlabel(f"PSNR (dB) at sigma {sigma}")
    ax.set_ylabel(f"mIoU at sigma {sigma}")
    ax.set_title("Restoration fidelity vs. semantics kept")
    ax.grid(alpha=0.3)
    path = out / f"psnr_vs_miou_sigma{sigma}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_class_iou_change(results: list[dict], sigma: str, out: Path, cell_ids: set[str] | None = None
                          ) -> Path | None:
    plt = _pyplot()
    cells = [r for r in _cells(results, cell_ids) if sigma in r["metrics"]]
    base = {r["config"]["backbone"]: r for r in cells if r["config"]["objective"] == "l1"}
    cols, labels = [], []
    for r in cells:
        b = base.get(r["config"]["backbone"])
        if b is None or r is b:
            continue
        ours, ref = r["metrics"][sigma]["per_class_iou"], b["metrics"][sigma]["per_class_iou"]
        cols.append([np.nan if ours[c] is None or ref[c] is None else ours[c] - ref[c] for c in CLASSES])
        labels.append(f"{r['config']['backbone']}/{r['config']['objective']}")
    if not cols:
        return None
    data = np.array(cols).T
    lim = float(np.nanmax(np.abs(data))) or 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(labels), 7))
    im = ax.imshow(data, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
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

    from bench.cell_state import CHECKPOINT_FILE
    from bench.noise import eval_noise, quantize, to_unit
    from bench.train import load_trained_denoiser

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
    for s in sigmas:
        paths.append(plot_psnr_vs_miou(results, s, out, cell_ids))
        heat = plot_class_iou_change(results, s, out, cell_ids)
        if heat:
            paths.append(heat)
    curves = plot_validation_curves(results, out, cell_ids)
    if curves:
        paths.append(curves)
    if ctx is not None and sigmas:
        paths.append(plot_qualitative(results, ctx, sigmas[-1], out, cell_ids))
    return paths
