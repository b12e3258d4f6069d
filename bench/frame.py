"""Results as pandas DataFrames: the notebook user's entry point, and what reports, checks and plots are built on.

    from bench.frame import frame, image_frame
    df = frame("results/runs", grid="paper-table1", seeds=[0, 1, 2])    # one row per (cell, seed, sigma, metric)
    images = image_frame("results/runs")                                # one row per (cell, seed, sigma, image)

``frame`` columns: cell_id, slug, backbone (the table group: the backbone, with " @ <degradation>" for cells scored
on other inputs than Gaussian noise, ``bench.config.group_of``), objective, label (the table row's name, as recorded), params (the
effective objective parameters, JSON), seed, precision, sigma (str, "25"), metric (a registered name: psnr, ssim,
miou, ...: those the result was scored with), value.
``image_frame`` columns: cell_id, backbone, label, seed, sigma, image (its id), one column per mean-kind metric
(psnr, ssim, ...), and for each iou-kind metric the pixel counts ``<intersect key>.<class>``, ``<union key>.<class>``
for the 19 classes (mIoU's: ``intersect.<class>``, ``union.<class>``; ``semantic_consistency.intersect.<class>``
...). They are absent for results written before they were kept: their mIoU cannot be resampled, ``resamplable``
says so per row of ``frame``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.base.classes import CLASSES
from bench.config import group_of
from bench.results import scored_metrics

IMAGE_COLUMNS = ["cell_id", "backbone", "label", "seed", "sigma", "image"]
FRAME_COLUMNS = ["cell_id", "slug", "backbone", "objective", "label", "params", "seed", "precision", "sigma",
                 "metric", "value", "resamplable"]


def _results(results_dir: Path | str | list[dict], suite: str, grid=None, seeds: Iterable[int] | None = None,
             precision: str | None = None) -> list[dict]:
    """Cell results (loaded, or as given), restricted to a grid's cells (a Grid or anything ``get_grid`` takes)."""
    from bench.results import load_results

    results = results_dir if isinstance(results_dir, list) else load_results(Path(results_dir), suite)
    cells = [r for r in results if r.get("kind") == "cell"]
    scored = [as_row(r) for r in results if r.get("kind") == "scored"]
    if grid is None:
        return cells + scored
    from bench.grids import Grid, get_grid

    g = grid if isinstance(grid, Grid) else get_grid(grid).with_seeds(seeds).with_precision(precision)
    ids = {c.cell_hash() for c in g.cells(suite)}
    return [r for r in cells if r["cell_id"] in ids] + scored


def as_row(scored: dict) -> dict:
    """A scored result (``bench score``) in the shape of a cell's, for the frames: group "scored" (``group_of``), its
    name as the label, seed 0 (a fixed checkpoint has one)."""
    return {**scored, "cell_id": scored["scored_id"], "slug": f"scored-{scored['name']}", "label": scored["name"],
            "seed": 0, "precision": "", "objective_params": {},
            "config": {**scored["config"], "backbone": "scored", "objective": ""}}


def frame(results_dir: Path | str | list[dict], grid=None, seeds: Iterable[int] | None = None, suite: str = "synthcity",
          precision: str | None = None) -> pd.DataFrame:
    """One row per (cell, seed, sigma, metric); see the module docstring."""
    rows = []
    for r in _results(results_dir, suite, grid, seeds, precision):
        cfg = r["config"]
        for sigma, m in r["metrics"].items():
            per = m.get("per_image", {})
            for metric in scored_metrics(r):
                rows.append((r["cell_id"], r["slug"], group_of(cfg), cfg["objective"], r["label"],
                             json.dumps(r.get("objective_params", {}), sort_keys=True), int(r["seed"]),
                             r.get("precision", "fp32"), str(sigma), metric, float(m[metric]),
                             all(k in per for k in per_image_keys(metric))))
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def per_image_keys(metric: str) -> tuple[str, ...]:
    """The keys of a result's ``per_image`` that hold ``metric``'s per-image data (its values, or its areas)."""
    from bench.metrics import METRICS

    if metric in METRICS and ":" not in metric and METRICS.get(metric).kind == "iou":
        return METRICS.get(metric).area_keys
    return (metric,)


def image_frame(results_dir: Path | str | list[dict], grid=None, seeds: Iterable[int] | None = None,
                suite: str = "synthcity", precision: str | None = None) -> pd.DataFrame:
    """One row per (cell, seed, sigma, val image); see the module docstring."""
    parts = []
    for r in _results(results_dir, suite, grid, seeds, precision):
        for sigma, m in r["metrics"].items():
            per = m.get("per_image", {})
            if not per.get("ids"):
                continue
            part = pd.DataFrame({"image": per["ids"]})
            for metric in scored_metrics(r):
                keys = per_image_keys(metric)
                if keys == (metric,):
                    if metric in per:
                        part[metric] = per[metric]
                    continue
                for area in keys:
                    if area in per:
                        values = np.asarray(per[area], dtype=np.int64)
                        part = pd.concat([part, pd.DataFrame(values, columns=[f"{area}.{c}" for c in CLASSES])],
                                         axis=1)
            part.insert(0, "sigma", str(sigma))
            part.insert(0, "seed", int(r["seed"]))
            part.insert(0, "label", r["label"])
            part.insert(0, "backbone", group_of(r["config"]))
            part.insert(0, "cell_id", r["cell_id"])
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=IMAGE_COLUMNS + ["psnr", "ssim"])
    return pd.concat(parts, ignore_index=True)


def export(results_dir: Path | str, out: Path, fmt: str = "csv", **selection) -> list[Path]:
    """Write ``frame`` and ``image_frame`` as ``<out>/results.<fmt>`` and ``<out>/images.<fmt>`` (csv | parquet)."""
    from bench.base.errors import BenchError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file: give a folder to write results.{fmt} and images.{fmt} into")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in (("results", frame(results_dir, **selection)), ("images", image_frame(results_dir, **selection))):
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False)
        elif fmt == "parquet":
            try:
                df.to_parquet(path, index=False)
            except ImportError as e:
                raise BenchError(f"--format parquet needs pyarrow ({e}); pip install pyarrow, or use --format csv") from None
        else:
            raise BenchError(f"--format {fmt!r}: expected csv or parquet")
        written.append(path)
    return written


def read_export(path: Path) -> pd.DataFrame:
    """A frame written by ``export``, with the dtypes ``frame`` gives (sigma as str)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"sigma": str, "image": str, "params": str})
