"""Ranked tables from results files, in the layout of the paper's Tables 1 and 2.

Rows: one per (backbone, objective), grouped by backbone in the paper's order; columns: PSNR / SSIM /
mIoU per test sigma. Each value carries its rank within its backbone group (ties share the better
rank) and the best of a group is bold. With several seeds a value is mean ± std over seeds, ranked
by the mean, and "k/n" says in how many of the n seeds the row held that rank. ``paper`` adds the
paper's number and our difference under each row. Reference rows ("noisy input", "clean input")
follow, unranked. Renderers: markdown (default), csv, latex, html.
"""
from __future__ import annotations

import csv
import html
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.metrics import METRICS

COLUMNS = ("psnr", "ssim", "miou")
DIGITS = {"psnr": 2, "ssim": 4, "miou": 4}
HEAD = {"psnr": "PSNR", "ssim": "SSIM", "miou": "mIoU"}
FORMATS = ("markdown", "csv", "latex", "html")
Column = tuple[str, str]  # (sigma, metric)


def paper_backbone(name: str) -> str:
    """The paper's backbone a (possibly reduced) variant stands for: ffdnet_small -> ffdnet."""
    return name.removesuffix("_small")


def row_order(row: Row) -> tuple:
    """Backbones and objectives in their registries' order (the paper's for the built-in ones), unknown last."""
    from losses.registry import OBJECTIVES
    from models.registry import BACKBONES

    return (BACKBONES.order(row.backbone), OBJECTIVES.order(row.objective.split(" ")[0]), row.objective)


@dataclass
class Row:
    backbone: str
    objective: str
    values: dict[Column, float | None]  # mean over seeds
    per_seed: dict[Column, list[float]] = field(default_factory=dict)
    paper: dict[Column, float] = field(default_factory=dict)

    @property
    def seeds(self) -> int:
        return max((len(v) for v in self.per_seed.values()), default=1)


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
    """(cell rows, reference rows, sigmas) from loaded results; ``cell_ids`` restricts to a grid.

    Cells that differ only by seed merge into one row (mean over seeds, per-seed values kept).
    """
    per_seed: dict[tuple[str, str], dict[Column, list[float]]] = defaultdict(lambda: defaultdict(list))
    refs, sigmas = [], []
    for r in results:
        if r.get("kind") == "cell":
            if cell_ids is not None and r["cell_id"] not in cell_ids:
                continue
            key = (r["config"]["backbone"], r["label"])
            for s in r["metrics"]:
                for m in COLUMNS:
                    per_seed[key][(s, m)].append(r["metrics"][s][m])
                sigmas += [s] if s not in sigmas else []
    cells = [Row(b, o, {c: statistics.fmean(v) for c, v in vals.items()}, dict(vals))
             for (b, o), vals in per_seed.items()]
    for r in results:
        if r.get("kind") == "reference":
            for name, by_sigma in r["metrics"].items():
                vals = {(s, m): by_sigma[s][m] for s in by_sigma if s in sigmas or not sigmas for m in COLUMNS}
                refs.append(Row("", name, vals))
    sigmas.sort(key=float)
    cells.sort(key=row_order)
    return cells, _dedupe(refs), sigmas


def _dedupe(rows: list[Row]) -> list[Row]:
    merged: dict[str, Row] = {}
    for row in rows:
        merged.setdefault(row.objective, Row("", row.objective, {})).values.update(row.values)
    return [merged[k] for k in ("noisy input", "clean input") if k in merged]


def read_paper_tables(path: Path) -> dict[tuple[str, str, str, str], float]:
    """results/paper_tables.csv -> {(backbone, objective, sigma, metric): value}."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            for m in COLUMNS:
                out[(r["backbone"], r["objective"], f"{float(r['sigma']):g}", m)] = float(r[m])
    return out


def attach_paper(rows: list[Row], paper: dict[tuple[str, str, str, str], float]) -> None:
    for row in rows:
        for s, m in list(row.values):
            v = paper.get((paper_backbone(row.backbone), row.objective, s, m))
            if v is not None:
                row.paper[(s, m)] = v


# ------------------------------------------------------------------ the ranked table, renderer-neutral


@dataclass
class Cell:
    text: str  # the value as text ("30.12", "30.12 ± 0.05", "∞", "–")
    rank: int | None = None
    held: str = ""  # "k/n": seeds in which the row held this rank
    bold: bool = False
    value: float | None = None
    std: float | None = None


@dataclass
class TableRow:
    label: tuple[str, str]  # (backbone, objective) as shown
    cells: list[Cell]
    kind: str = "cell"  # cell | paper | reference
    key: tuple[str, str] = ("", "")  # (backbone, objective) in full, for machine-readable output


def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "–"
    if v == float("inf"):
        return "∞"
    return f"{v:.{DIGITS[metric]}f}"


def build_table(cells: list[Row], refs: list[Row], sigmas: list[str]) -> tuple[list[Column], list[TableRow]]:
    cols = [(s, m) for s in sigmas for m in COLUMNS]
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in cells:
        groups[row.backbone].append(row)
    out: list[TableRow] = []
    for backbone, rows in groups.items():
        ranks = {c: rank([r.values.get(c) for r in rows], METRICS[c[1]].higher_is_better) for c in cols}
        held = {c: _rank_held(rows, c, ranks[c]) for c in cols}
        for i, row in enumerate(rows):
            line = []
            for c in cols:
                v, k = row.values.get(c), ranks[c][i] if len(rows) > 1 else None
                seeds = row.per_seed.get(c, [])
                std = statistics.stdev(seeds) if len(seeds) > 1 else None
                text = _fmt(v, c[1]) + (f" ± {std:.{DIGITS[c[1]]}f}" if std is not None else "")
                line.append(Cell(text, k, held[c][i] if k is not None else "", k == 1, v, std))
            key = (backbone, row.objective)
            out.append(TableRow((backbone if i == 0 else "", row.objective), line, "cell", key))
            if row.paper:
                out.append(TableRow(("", "↳ paper (Δ ours − paper)"), [_paper_cell(row, c) for c in cols], "paper",
                                    (paper_backbone(backbone), row.objective)))
    for row in refs:
        out.append(TableRow(("*reference*", row.objective),
                            [Cell(_fmt(row.values.get(c), c[1]), value=row.values.get(c)) for c in cols], "reference",
                            ("reference", row.objective)))
    return cols, out


def _rank_held(rows: list[Row], col: Column, ranks: list[int | None]) -> list[str]:
    """Per row, "k/n": in how many seeds its per-seed rank equals its rank on the mean ("" for one seed)."""
    n = min((len(r.per_seed.get(col, [])) for r in rows), default=0)
    if n < 2:
        return [""] * len(rows)
    per_seed_ranks = [rank([r.per_seed[col][s] for r in rows], METRICS[col[1]].higher_is_better) for s in range(n)]
    return [f"{sum(1 for pr in per_seed_ranks if pr[i] == ranks[i])}/{n}" for i in range(len(rows))]


def _paper_cell(row: Row, c: Column) -> Cell:
    p, ours = row.paper.get(c), row.values.get(c)
    if p is None:
        return Cell("–")
    diff = f" ({ours - p:+.{DIGITS[c[1]]}f})" if ours is not None and ours != float("inf") else ""
    return Cell(_fmt(p, c[1]) + diff, value=p)


def _header(cols: list[Column]) -> list[str]:
    return ["Backbone", "Objective"] + [f"σ={s} {HEAD[m]} {'↑' if METRICS[m].higher_is_better else '↓'}"
                                        for s, m in cols]


def _rank_suffix(cell: Cell) -> str:
    if cell.rank is None:
        return ""
    return f" ({cell.rank}{', ' + cell.held if cell.held else ''})"


def to_markdown(cols: list[Column], rows: list[TableRow]) -> str:
    lines = ["| " + " | ".join(_header(cols)) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(cols)) + "|"]
    for r in rows:
        label = list(r.label)
        if r.kind == "reference":
            label = [label[0], f"*{label[1]}*"]
        elif r.kind == "paper":
            label = ["", f"*{label[1]}*"]
        texts = [(f"**{c.text}**" if c.bold else c.text) + _rank_suffix(c) for c in r.cells]
        if r.kind == "paper":
            texts = [f"*{t}*" if t != "–" else t for t in texts]
        lines.append("| " + " | ".join(label + texts) + " |")
    return "\n".join(lines)


def to_csv(cols: list[Column], rows: list[TableRow]) -> str:
    """One line per (row, column): machine-readable, full precision, ranks and std as fields."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", "backbone", "objective", "sigma", "metric", "value", "std", "rank", "rank_held"])
    for r in rows:
        for (s, m), c in zip(cols, r.cells, strict=True):
            w.writerow([r.kind, *r.key, s, m, "" if c.value is None else repr(c.value),
                        "" if c.std is None else repr(c.std), c.rank or "", c.held])
    return buf.getvalue()


def _latex_escape(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def to_latex(cols: list[Column], rows: list[TableRow]) -> str:
    """A booktabs table: sigma column groups, best per group in bold, ranks as superscripts."""
    sigmas = list(dict.fromkeys(s for s, _ in cols))
    lines = [r"\begin{tabular}{ll" + "r" * len(cols) + "}", r"\toprule",
             " & ".join(["", ""] + [rf"\multicolumn{{{len(COLUMNS)}}}{{c}}{{$\sigma={s}$}}" for s in sigmas]) + r" \\",
             " ".join(rf"\cmidrule(lr){{{3 + i * len(COLUMNS)}-{2 + (i + 1) * len(COLUMNS)}}}"
                      for i in range(len(sigmas))),
             " & ".join(["Backbone", "Objective"] + [HEAD[m] for _, m in cols]) + r" \\", r"\midrule"]
    for r in rows:
        if r.kind == "reference" and not lines[-1].startswith(r"\midrule"):
            lines.append(r"\midrule")
        texts = []
        for c in r.cells:
            t = _latex_escape(c.text).replace("∞", r"$\infty$").replace("±", r"$\pm$").replace("–", "--")
            t = rf"\textbf{{{t}}}" if c.bold else t
            texts.append(t + (rf"$^{{{c.rank}}}$" if c.rank is not None else ""))
        label = [_latex_escape(x.strip("*")) for x in r.label]
        if r.kind == "paper":
            label = ["", r"\textit{paper}"]
            texts = [rf"\textit{{{t}}}" for t in texts]
        lines.append(" & ".join(label + texts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_html(cols: list[Column], rows: list[TableRow]) -> str:
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _header(cols)) + "</tr></thead>",
           "<tbody>"]
    for r in rows:
        cells = [f"<td>{html.escape(x.strip('*'))}</td>" for x in r.label]
        for c in r.cells:
            t = html.escape(c.text + _rank_suffix(c))
            cells.append(f"<td class=\"num\">{'<b>' + t + '</b>' if c.bold else t}</td>")
        out.append(f"<tr class=\"{r.kind}\">" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


RENDERERS = {"markdown": to_markdown, "csv": to_csv, "latex": to_latex, "html": to_html}


def render_report(results: list[dict], title: str, cell_ids: set[str] | None = None, fmt: str = "markdown",
                  paper: dict | None = None) -> str:
    """The ranked table of ``results`` (restricted to ``cell_ids``) in ``fmt``; ``paper`` from read_paper_tables."""
    cells, refs, sigmas = rows_from_results(results, cell_ids)
    if paper:
        attach_paper(cells, paper)
    cols, rows = build_table(cells, refs, sigmas)
    if fmt == "csv":
        return to_csv(cols, rows)
    if not cells and not refs:
        return f"## {title}\n\nNo finished cells yet: run `python -m bench run` first.\n"
    notes = ["PSNR (dB) and SSIM on RGB in [0, 1] after uint8 quantisation; mIoU over the 19 Cityscapes "
             "classes as a fraction. (n) is the rank within the backbone group, best in bold."]
    if any(r.seeds > 1 for r in cells):
        notes.append("Values are mean ± std over seeds, ranked by the mean; k/n: the row held that rank in k of n seeds.")
    if paper:
        notes.append("Paper rows: the published value (our difference). Reduced embedded variants (`*_small`) are "
                     "compared with the paper's full backbones; on synthcity only the ordering is comparable.")
    weights = {r["weights"]["segmenter"]["sha256"][:12] for r in results if "weights" in r}
    if len(weights) == 1:
        notes.append(f"Segmenter weights sha256: {weights.pop()}.")
    elif weights:
        notes.append(f"**Warning**: these results come from {len(weights)} different segmenter weights "
                     f"({', '.join(sorted(weights))}); their mIoU values are not comparable. Use one results folder "
                     "per evaluator (--results).")
    body = RENDERERS[fmt](cols, rows)
    if fmt == "latex":
        return "% " + title + "\n" + body + "\n" + "".join(f"% {n}\n" for n in notes)
    if fmt == "html":
        return f"<h2>{html.escape(title)}</h2>\n{body}\n" + "".join(f"<p>{html.escape(n)}</p>\n" for n in notes)
    return f"## {title}\n\n" + body + "\n\n" + "\n".join(notes) + "\n"
