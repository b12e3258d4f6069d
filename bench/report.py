"""Ranked markdown tables from results files.

Rows: one per (backbone, objective), grouped by backbone; columns: PSNR / SSIM / mIoU per test
sigma. Each value carries its rank within its backbone group (ties share the better rank) and the
best of a group is bold. Reference rows ("noisy input", "clean input") follow, unranked.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from bench.metrics import METRICS

COLUMNS = ("psnr", "ssim", "miou")
DIGITS = {"psnr": 2, "ssim": 4, "miou": 4}
HEAD = {"psnr": "PSNR", "ssim": "SSIM", "miou": "mIoU"}


@dataclass
class Row:
    backbone: str
    objective: str
    values: dict[tuple[str, str], float | None]  # (sigma, metric) -> value


def rank(values: list[float | None], higher_is_better: bool) -> list[int | None]:
    """Competition ranks (1, 2, 2, 4); None stays unranked."""
    present = [v for v in values if v is not None]
    out: list[int | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        better = sum(1 for w in present if (w > v if higher_is_better else w < v))
        out.append(better + 1)
    return out


def rows_from_results(results: list[dict], cell_ids: set[str] | None = None) -> tuple[list[Row], list[Row], list[str]]:
    """(cell rows, reference rows, sigmas) from loaded results; ``cell_ids`` restricts to a grid."""
    cells, refs, sigmas = [], [], []
    for r in results:
        if r.get("kind") == "cell":
            if cell_ids is not None and r["cell_id"] not in cell_ids:
                continue
            vals = {(s, m): r["metrics"][s][m] for s in r["metrics"] for m in COLUMNS}
            cells.append(Row(r["config"]["backbone"], r["config"]["objective"], vals))
            sigmas += [s for s in r["metrics"] if s not in sigmas]
    for r in results:
        if r.get("kind") == "reference":
            for name, per_sigma in r["metrics"].items():
                vals = {(s, m): per_sigma[s][m] for s in per_sigma if s in sigmas or not sigmas for m in COLUMNS}
                refs.append(Row("", name, vals))
    sigmas.sort(key=float)
    cells.sort(key=lambda row: (row.backbone, row.objective))
    return cells, _dedupe(refs), sigmas


def _dedupe(rows: list[Row]) -> list[Row]:
    merged: dict[str, Row] = {}
    for row in rows:
        merged.setdefault(row.objective, Row("", row.objective, {})).values.update(row.values)
    return [merged[k] for k in ("noisy input", "clean input") if k in merged]


def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "–"
    if v == float("inf"):
        return "∞"
    return f"{v:.{DIGITS[metric]}f}"


def markdown_table(cells: list[Row], refs: list[Row], sigmas: list[str]) -> str:
    cols = [(s, m) for s in sigmas for m in COLUMNS]
    header = ["Backbone", "Objective"] + [f"σ={s} {HEAD[m]} {'↑' if METRICS[m].higher_is_better else '↓'}"
                                          for s, m in cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(cols)) + "|"]
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in cells:
        groups[row.backbone].append(row)
    for backbone, rows in groups.items():
        ranks = {c: rank([r.values.get(c) for r in rows], METRICS[c[1]].higher_is_better) for c in cols}
        for i, row in enumerate(rows):
            out = [backbone if i == 0 else "", row.objective]
            for c in cols:
                v, k = row.values.get(c), ranks[c][i]
                text = _fmt(v, c[1])
                if k == 1 and len(rows) > 1:
                    text = f"**{text}**"
                out.append(text + (f" ({k})" if k is not None and len(rows) > 1 else ""))
            lines.append("| " + " | ".join(out) + " |")
    for row in refs:
        lines.append("| " + " | ".join(["*reference*", f"*{row.objective}*"]
                                        + [_fmt(row.values.get(c), c[1]) for c in cols]) + " |")
    return "\n".join(lines)


def render_report(results: list[dict], title: str, cell_ids: set[str] | None = None) -> str:
    cells, refs, sigmas = rows_from_results(results, cell_ids)
    if not cells and not refs:
        return f"## {title}\n\nNo finished cells yet: run `python -m bench run` first.\n"
    notes = ["PSNR (dB) and SSIM on RGB in [0, 1] after uint8 quantisation; mIoU over the 19 Cityscapes "
             "classes as a fraction. (n) is the rank within the backbone group, best in bold."]
    weights = {r["weights"]["segmenter"]["sha256"][:12] for r in results if "weights" in r}
    if len(weights) == 1:
        notes.append(f"Segmenter weights sha256: {weights.pop()}.")
    elif weights:
        notes.append(f"**Warning**: these results come from {len(weights)} different segmenter weights "
                     f"({', '.join(sorted(weights))}); their mIoU values are not comparable. Use one results folder "
                     "per evaluator (--results).")
    return f"## {title}\n\n" + markdown_table(cells, refs, sigmas) + "\n\n" + "\n".join(notes) + "\n"
