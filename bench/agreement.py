"""Rank agreement between evaluators: do two segmenters order the objectives the same way?

Cells are scored by the evaluator they were trained beside (their ``result.json``) and, re-scored from their saved
weights under another one (``bench score --rescore`` or ``--cell``, with ``--evaluator erfnet`` on the embedded
suite or ``--seg-config``/``--seg-checkpoint`` on cityscapes), by that one too (results of kind ``scored`` whose source is the cell). Per table group,
test level and other evaluator: Kendall's tau between the two orderings of the rows (each row: the mean over its
re-scored seeds), a bootstrap interval over val images (the same image resample for both evaluators: it is the
images, not the networks, that are resampled), and the pairs of rows whose order swaps.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.base.errors import BenchError
from bench.frame import image_frame
from bench.report import (
    _order_key,
    evaluation_key,
    evaluator_label,
    group_seed,
    main_evaluation_key,
    row_samples,
)
from bench.stats import ALPHA, N_BOOT, image_weights

COLUMNS = ["backbone", "sigma", "metric", "evaluator", "rows", "tau", "tau_low", "tau_high", "swaps"]


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    t = sps.kendalltau(a, b).statistic
    return float(t) if np.isfinite(t) else float("nan")


def _percentile(values: np.ndarray, q: float) -> float:
    """A percentile of the defined values (tau is undefined where one evaluator ties every row); NaN if none is."""
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")


def agreement_frame(results: list[dict], metric: str = "miou", n_boot: int = N_BOOT, alpha: float = ALPHA
                    ) -> pd.DataFrame:
    """One row per (group, level, other evaluator): rows compared, tau, its (1 - alpha) bootstrap interval, swaps."""
    cells = {r["cell_id"]: r for r in results if r.get("kind") == "cell"}
    base_key = main_evaluation_key(list(cells.values()))
    rescored: dict[str, dict[str, dict]] = {}
    labels_of: dict[str, str] = {}
    for r in results:
        src = r.get("source") or {}
        key = evaluation_key(r)
        if r.get("kind") == "scored" and src.get("kind") == "cell" and src.get("cell_id") in cells and key != base_key:
            cell = cells[src["cell_id"]]
            seen = rescored.setdefault(key, {})
            labels_of[key] = evaluator_label(r)
            if cell["cell_id"] in seen:
                raise BenchError(f"cell {cell['slug']} was re-scored twice under evaluator {key[:12]} "
                                 f"({Path(seen[cell['cell_id']]['_scored']).parent.name} and "
                                 f"{Path(r.get('_path', '?')).parent.name}): keep one")
            for sigma, m in r["metrics"].items():
                if (m.get("per_image") or {}).get("ids") != ((cell["metrics"].get(sigma) or {}).get("per_image")
                                                             or {}).get("ids"):
                    raise BenchError(f"{r.get('_path', 'a re-scored result')} was scored on other val images than "
                                     f"cell {cell['slug']} (sigma {sigma}): they cannot be compared")
            seen[cell["cell_id"]] = {**cell, "metrics": r["metrics"], "metric_info": r["metric_info"],
                                     "_scored": r.get("_path", "?")}
    if not rescored:
        raise BenchError("no cell of these results was scored under another evaluator: re-score the cells with "
                         "`bench score --rescore --grid G --results R --evaluator erfnet` (synthcity; on cityscapes "
                         "--seg-config ... --seg-checkpoint ...; one cell: --cell <cell folder>), then report "
                         "--agreement")
    out = []
    for key, by_id in sorted(rescored.items(), key=lambda kv: str(kv[0])):
        theirs = image_frame(list(by_id.values()))
        ours = image_frame([cells[i] for i in by_id])
        for (group, sigma), g_ours in ours.groupby(["backbone", "sigma"], sort=False):
            g_theirs = theirs[(theirs["backbone"] == group) & (theirs["sigma"] == sigma)]
            a, b = row_samples(g_ours, metric), row_samples(g_theirs, metric)
            labels = sorted((k for k in a if k in b), key=lambda k: _order_key(group, k))  # the table's row order
            if len(labels) < 2:
                continue
            n = a[labels[0]].images
            rng = np.random.default_rng(group_seed(group, sigma, f"agreement {key}"))
            w = np.concatenate([np.ones((1, n)), image_weights(n, n_boot, rng)])
            va = np.stack([a[k].statistic(w).mean(0) for k in labels])  # (rows, 1 + B)
            vb = np.stack([b[k].statistic(w).mean(0) for k in labels])
            taus = np.array([_tau(va[:, j], vb[:, j]) for j in range(1, w.shape[0])])
            swaps = [f"{x} ↔ {y}" for (i, x), (j, y) in itertools.combinations(enumerate(labels), 2)
                     if np.sign(va[i, 0] - va[j, 0]) * np.sign(vb[i, 0] - vb[j, 0]) < 0]
            out.append({"backbone": group, "sigma": sigma, "metric": metric, "evaluator": labels_of[key],
                        "rows": len(labels), "tau": _tau(va[:, 0], vb[:, 0]),
                        "tau_low": _percentile(taus, 100 * alpha / 2),
                        "tau_high": _percentile(taus, 100 * (1 - alpha / 2)),
                        "swaps": "; ".join(swaps)})
    if not out:
        raise BenchError(f"no group has two rows re-scored with metric {metric!r} under another evaluator (the "
                         "re-scored results lack it, or hold one row per group); re-score with --set "
                         f"metrics=[...,\"{metric}\"]")
    return pd.DataFrame(out, columns=COLUMNS)


def _tau_text(r) -> str:
    if not np.isfinite(r["tau"]):
        return "undefined (an evaluator ties every row)"
    return f"{r['tau']:+.2f} [{r['tau_low']:+.2f}, {r['tau_high']:+.2f}]"


def render_agreement(df: pd.DataFrame, title: str) -> str:
    lines = [f"## {title}: rank agreement between evaluators", "",
             "| Group | σ | metric | other evaluator | rows | Kendall's τ [95 %] | rows that swap order |",
             "|---|---:|---|---|---:|---:|---|"]
    for _, r in df.iterrows():
        lines.append(f"| {r['backbone']} | {r['sigma']} | {r['metric']} | {r['evaluator']} | {r['rows']} | "
                     f"{_tau_text(r)} | {r['swaps'] or '–'} |")
    lines += ["", "τ between the rows' order under the cells' own evaluator and under the other (each row: the mean "
              "over its re-scored seeds); the interval resamples val images (the same resample for both "
              "evaluators); τ = 1: the same order."]
    return "\n".join(lines) + "\n"
