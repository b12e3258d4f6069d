"""Ranked tables that say which ranks are real, in the layout of the paper's Tables 1 and 2.

Rows: one per (backbone, objective label), grouped by backbone in the registries' order; columns: PSNR / SSIM /
mIoU per test sigma. Built on ``bench.frame`` (pandas) and ``bench.stats``: each value is the mean over seeds
(± their std with several seeds), followed by its letters: rows of a backbone group that share a letter are
not significantly different (paired bootstrap over val images, stratified over seeds, Holm over the group's
pairs); the whole top group is bold. ``ci`` adds the 95 % interval; with several seeds P(row > l1) follows.
``paper`` adds the paper's number and our difference under each row. Reference rows ("noisy input", "clean
input") follow, unranked. Renderers: markdown (default), csv (the long table, every field), latex and html
(pandas' writers).
"""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from bench.base.classes import CLASSES
from bench.base.errors import BenchError
from bench.config import group_of
from bench.frame import as_row, frame, image_frame, per_image_keys
from bench.metrics import DEFAULT_METRICS, METRICS, ordered
from bench.results import scored_metrics
from bench.stats import ALPHA, N_BOOT, RowSample, SeedSpread, analyse_group

COLUMNS = DEFAULT_METRICS  # the paper's columns; a table shows the metrics its results hold, in registry order


class _ByMetric:
    """``DIGITS["psnr"]`` -> 2, ``HEAD["miou"]`` -> "mIoU": a registered metric's attribute, looked up by name."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    def __getitem__(self, metric: str):
        return getattr(METRICS[metric], self.attr)


DIGITS, HEAD = _ByMetric("digits"), _ByMetric("label")
FORMATS = ("markdown", "csv", "latex", "html")
REFERENCE = "l1"
KEYS = ["backbone", "label", "sigma", "metric"]
SCORED = "scored"  # the table group of restorers scored without training here (bench score)
# a fixed checkpoint has no seed spread to measure: scored rows are compared on the image sample alone
FIXED = SeedSpread(0.0, 2, "fixed checkpoints: the image sample only")


def paper_backbone(name: str) -> str:
    """The paper's backbone a (possibly reduced) variant stands for: ffdnet_small -> ffdnet."""
    return name.removesuffix("_small")


def _order_key(backbone: str, label: str) -> tuple:
    """Backbones and objectives in their registries' order (the paper's for the built-in ones), unknown last."""
    from losses.registry import OBJECTIVES
    from models.registry import BACKBONES

    name, _, degradation = backbone.partition(" @ ")  # a degradation's group after its backbone's Gaussian one
    return (BACKBONES.order(name), degradation, OBJECTIVES.order(label.split(" ")[0]), label)


def row_samples(images: pd.DataFrame, metric: str) -> dict[str, RowSample]:
    """The per-seed, per-image data of each label of one (backbone, sigma) for ``metric``; labels whose results
    lack per-image areas are left out of mIoU."""
    out = {}
    keys = per_image_keys(metric)
    iou = len(keys) == 2
    inter = [f"{keys[0]}.{c}" for c in CLASSES]
    union = [f"{keys[-1]}.{c}" for c in CLASSES]
    for label, rows in images.groupby("label", sort=False):
        rows = rows.sort_values(["seed", "image"])
        seeds = rows["seed"].nunique()
        if iou:
            if inter[0] not in rows or rows[inter[0]].isna().any():
                continue
            i = rows[inter].to_numpy(np.float64).reshape(seeds, -1, len(CLASSES))
            u = rows[union].to_numpy(np.float64).reshape(seeds, -1, len(CLASSES))
            out[label] = RowSample(areas=np.stack([i, u], axis=2))
        else:
            if metric not in rows or rows[metric].isna().any():
                continue
            out[label] = RowSample(values=rows[metric].to_numpy(np.float64).reshape(seeds, -1))
    return out


def group_seed(backbone: str, sigma: str, metric: str) -> int:
    """The bootstrap seed of one comparison family: the same results give the same table."""
    return int(hashlib.sha256("|".join((backbone, sigma, metric)).encode()).hexdigest()[:8], 16)


def table_frame(results: list[dict], cell_ids: set[str] | None = None, n_boot: int = N_BOOT,
                reference: str = REFERENCE, spreads: dict | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """The long table: one row per (backbone, label, sigma, metric) with value (mean over seeds), std, seeds,
    ci_low/ci_high/ci_basis, ranked, letters, top, diff/diff_low/diff_high/diff_p/diff_df (to ``reference``),
    p_improve/p_improve_low/p_improve_high; then the reference rows (kind "reference"). ``spreads``
    ({(backbone, metric): SeedSpread}, ``read_seed_spreads``) stand in for the seed variance of single-seed rows;
    ``alpha`` is the level of letters and intervals (``--seeds auto``: its look level). Bootstrap draws are seeded by the group: the same results give the same table."""
    cells = [r for r in results if r.get("kind") == "cell" and (cell_ids is None or r["cell_id"] in cell_ids)]
    scored = main_evaluator_rows(results, cells)
    _one_cell_per_row_and_seed(cells + [as_row(r) for r in scored])
    cells = cells + scored
    df = frame(cells)
    if df.empty:
        out = pd.DataFrame(columns=[*KEYS, "value", "std", "seeds", "kind"])
    else:
        out = (df.groupby(KEYS, sort=False)["value"].agg(value="mean", std="std", seeds="count").reset_index())
        out["kind"] = "cell"
        images = image_frame(cells)
        stats = []
        for (backbone, sigma), group in images.groupby(["backbone", "sigma"], sort=False):
            for metric in ordered(df["metric"].unique()):
                rows = row_samples(group, metric)
                if not rows:
                    continue
                spread = FIXED if backbone.startswith(SCORED) else seed_spread_for(spreads, backbone, metric)
                res = analyse_group(rows, METRICS[metric].higher_is_better, reference, n_boot,
                                    seed=group_seed(backbone, sigma, metric), alpha=alpha, spread=spread)
                stats += [{"backbone": backbone, "label": k, "sigma": sigma, "metric": metric, **v}
                          for k, v in res.items()]
        if stats:
            out = out.merge(pd.DataFrame(stats).drop(columns=["value", "seeds"]), on=KEYS, how="left")
    refs = []
    shown = set(out["metric"]) if len(out) else None  # the reference rows' values of the cells' metrics
    for r in results:
        if r.get("kind") == "reference":
            names = [m for m in scored_metrics(r) if shown is None or m in shown]
            for name, by_sigma in r["metrics"].items():
                refs += [{"backbone": "", "label": name, "sigma": str(s), "metric": m, "value": float(v[m]),
                          "seeds": 1, "kind": "reference"} for s, v in by_sigma.items() for m in names]
    if refs:
        sigmas = set(out["sigma"]) if len(out) else None
        ref = pd.DataFrame(refs).drop_duplicates(KEYS, keep="last")
        out = pd.concat([out, ref[ref["sigma"].isin(sigmas)] if sigmas else ref], ignore_index=True)
    return _sorted(out)


def evaluation_key(result: dict) -> str:
    """The evaluator a result was measured with (``bench.identity``'s key), as text ("None" when not recorded)."""
    return str((result.get("evaluation") or {}).get("key"))


def evaluator_label(result: dict) -> str:
    """A result's segmenter for people: its config's file stem and checkpoint sha256, "synthcity_erfnet 1a2b3c4d"."""
    seg = (result.get("weights") or {}).get("segmenter") or {}
    stem = Path(str(seg.get("config") or "?")).stem
    return f"{stem} {str(seg.get('sha256') or evaluation_key(result))[:8]}"


def main_evaluation_key(results: list[dict]) -> str | None:
    """The evaluation key most of ``results`` were measured with (None for no results)."""
    from collections import Counter

    keys = Counter(evaluation_key(r) for r in results).most_common(1)
    return keys[0][0] if keys else None


def main_evaluator_rows(results: list[dict], cells: list[dict]) -> list[dict]:
    """The scored results measured with the cells' evaluator (the most common one; with no cells, the scored
    results' own most common): results re-scored under another evaluator belong to ``report --agreement``."""
    scored = [r for r in results if r.get("kind") == "scored"]
    key = main_evaluation_key(cells or scored)
    return [r for r in scored if evaluation_key(r) == key]


def _one_cell_per_row_and_seed(cells: list[dict]) -> None:
    """Two cells of other configurations under one row and seed (a short trial beside the grid's cell) would be
    averaged as if they were seeds of one objective: refused, naming both."""
    seen: dict[tuple, dict] = {}
    for r in cells:
        key = (group_of(r["config"]), r["label"], int(r["seed"]))
        other = seen.setdefault(key, r)
        if other["cell_id"] != r["cell_id"]:
            names = sorted(Path(x.get("_path", x["cell_id"])).parent.name or x["cell_id"] for x in (other, r))
            raise BenchError(f"two cells are row {key[0]} x {key[1]} at seed {key[2]} with other settings ({names[0]} "
                             f"and {names[1]}): report with --grid (and its --set), or keep them in separate "
                             "--results folders")


def read_seed_spreads(path: Path) -> tuple[dict[tuple[str, str], SeedSpread], str]:
    """A seed-spread file -> ({(backbone, metric): SeedSpread}, its source). The file (JSON):
    {"source": "how it was measured", "seeds": 5, "std": {"<backbone>" or "*": {"psnr": 0.12, "miou": 0.007}}}."""
    import json

    try:
        data = json.loads(Path(path).read_text())
        seeds, source = int(data["seeds"]), str(data.get("source", ""))
        table = {(b, m): SeedSpread(float(sd), seeds, source) for b, by in data["std"].items() for m, sd in by.items()}
    except FileNotFoundError:
        raise BenchError(f"--seed-spread {path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise BenchError(f"--seed-spread {path}: expected {{\"source\", \"seeds\": N, \"std\": {{backbone: "
                         f"{{metric: std}}}}}} ({type(e).__name__}: {e})") from None
    bad = [f"{b}/{m}" for (b, m), s in table.items() if m not in METRICS or not (np.isfinite(s.std) and s.std >= 0)]
    if seeds < 2 or bad:
        raise BenchError(f"--seed-spread {path}: " + ("seeds must be >= 2" if seeds < 2 else
                         f"unknown metric or non-finite std: {', '.join(bad)}"))
    return table, source


def seed_spread_for(spreads: dict | None, backbone: str, metric: str) -> SeedSpread | None:
    """The supplied seed spread of ``backbone`` (its exact name, its paper backbone, then "*") for ``metric``."""
    if not spreads:
        return None
    for name in (backbone, paper_backbone(backbone), "*"):
        if (name, metric) in spreads:
            return spreads[(name, metric)]
    return None


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    rank = {"noisy input": 0, "clean input": 1}
    key = df.apply(lambda r: (1, (0, 0, ""), rank.get(r["label"], 2)) if r["kind"] == "reference"
                   else (0, _order_key(r["backbone"], r["label"]), 0), axis=1)
    sigma = df["sigma"].astype(float)
    metric = df["metric"].map(METRICS.order)
    return (df.assign(_k=key, _s=sigma, _m=metric).sort_values(["_k", "_s", "_m"], kind="stable")
            .drop(columns=["_k", "_s", "_m"]).reset_index(drop=True))


def read_paper_tables(path: Path) -> dict[tuple[str, str, str, str], float]:
    """results/paper_tables.csv -> {(backbone, objective, sigma, metric): value}."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            for m in COLUMNS:
                out[(r["backbone"], r["objective"], f"{float(r['sigma']):g}", m)] = float(r[m])
    return out


# --------------------------------------------------------------------------- the wide, human-readable table


def _level(alpha: float) -> str:
    return "5 % level" if alpha == ALPHA else f"level {alpha:.4g}"


def _confidence(alpha: float) -> str:
    return f"{100 * (1 - alpha):.4g} %"


def _fmt(v: float | None, metric: str) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if v == float("inf"):
        return "∞"
    return f"{v:.{DIGITS[metric]}f}"


def _cell_text(r: pd.Series, ci: bool) -> tuple[str, str, bool]:
    """(value text, annotation: letters and P(> l1), bold) of one long-table row."""
    d = DIGITS[r["metric"]]
    text = _fmt(r["value"], r["metric"])
    if r.get("seeds", 1) > 1 and pd.notna(r.get("std")):
        text += f" ± {r['std']:.{d}f}"
    if ci and pd.notna(r.get("ci_low")):
        text += f" [{r['ci_low']:.{d}f}, {r['ci_high']:.{d}f}]"
    notes = []
    if isinstance(r.get("letters"), str) and r["letters"]:
        notes.append(r["letters"])
    elif r.get("ranked") is False:
        notes.append("not ranked")
    if pd.notna(r.get("p_improve")) and r["label"] != REFERENCE:
        notes.append(f"P {r['p_improve']:.2f} [{r['p_improve_low']:.2f}, {r['p_improve_high']:.2f}]")
    return text, ", ".join(notes), bool(r.get("top")) if pd.notna(r.get("top")) else False


def wide_table(long: pd.DataFrame, ci: bool = False, paper: dict | None = None) -> pd.DataFrame:
    """Rows (kind, backbone, label) x columns "σ=25 PSNR ↑" ...: the table as text, cells "value (letters)" with
    the top group in ``**bold**``; paper rows under ours where ``paper`` has the value."""
    sigmas = sorted(long["sigma"].unique(), key=float)
    cols = [(s, m) for s in sigmas for m in ordered(long["metric"].unique())]
    headers = [f"σ={s} {HEAD[m]} {'↑' if METRICS[m].higher_is_better else '↓'}" for s, m in cols]
    rows, index = [], []
    seen_backbone = None
    rows_per_backbone = long[long["kind"] == "cell"].groupby("backbone")["label"].nunique()
    for (kind, backbone, label), g in long.groupby(["kind", "backbone", "label"], sort=False):
        by = {(r["sigma"], r["metric"]): r for _, r in g.iterrows()}
        single = kind == "cell" and rows_per_backbone.get(backbone, 0) < 2  # nothing to compare within the group
        line = []
        for c in cols:
            r = by.get(c)
            if r is None:
                line.append("–")
                continue
            text, note, bold = _cell_text(r, ci)
            line.append((f"**{text}**" if bold and not single else text) + (f" ({note})" if note and not single else ""))
        shown = "*reference*" if kind == "reference" else (backbone if backbone != seen_backbone else "")
        seen_backbone = backbone if kind == "cell" else seen_backbone
        rows.append(line)
        index.append((kind, shown, f"*{label}*" if kind == "reference" else label))
        if paper and kind == "cell":
            pline = []
            for s, m in cols:
                p = paper.get((paper_backbone(backbone), label, s, m))
                ours = by.get((s, m))
                if p is None:
                    pline.append("–")
                    continue
                diff = (f" ({ours['value'] - p:+.{DIGITS[m]}f})" if ours is not None and np.isfinite(ours["value"])
                        else "")
                pline.append(f"*{_fmt(p, m)}{diff}*")
            if any(x != "–" for x in pline):
                rows.append(pline)
                index.append(("paper", "", "*↳ paper (Δ ours − paper)*"))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["kind", "Backbone", "Objective"]),
                        columns=headers)


def to_markdown(wide: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(["Backbone", "Objective", *wide.columns]) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * len(wide.columns)) + "|"]
    for (_, backbone, label), row in wide.iterrows():
        lines.append("| " + " | ".join([backbone, label, *row.tolist()]) + " |")
    return "\n".join(lines)


def _plain(wide: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The wide table for latex/html: markup-free text with Backbone and Objective as columns (rows in order, a
    plain index: labels repeat across groups), the bold mask, and each row's kind."""
    text = wide.map(lambda s: s.replace("**", "").replace("*", ""))
    bold = wide.map(lambda s: s.startswith("**")).to_numpy()
    kinds = [k for k, _, _ in wide.index]
    labels = pd.DataFrame([(b, lab.strip("*")) for _, b, lab in wide.index], columns=["Backbone", "Objective"])
    table = pd.concat([labels, text.reset_index(drop=True)], axis=1)
    mask = np.concatenate([np.zeros((len(table), 2), bool), bold], axis=1)
    return table, mask, kinds


def to_latex(wide: pd.DataFrame) -> str:
    """pandas' Styler: LaTeX escaping of # $ % & _ { } ~ ^ \\, booktabs, the top group in bold."""
    table, bold, _ = _plain(wide)
    style = table.style.format(escape="latex").hide(axis="index").apply(
        lambda _: np.where(bold, "font-weight: bold;", ""), axis=None)
    body = style.format_index(escape="latex", axis=1).to_latex(
        hrules=True, convert_css=True, column_format="ll" + "r" * (len(table.columns) - 2))
    for text, tex in (("∞", r"$\infty$"), ("±", r"$\pm$"), ("–", "--"), ("σ", r"$\sigma$"), ("↑", r"$\uparrow$"),
                      ("↓", r"$\downarrow$")):
        body = body.replace(text, tex)
    return body


def to_html(wide: pd.DataFrame) -> str:
    table, bold, kinds = _plain(wide)
    style = table.style.hide(axis="index").apply(lambda _: np.where(bold, "font-weight: bold", ""), axis=None)
    page = style.to_html()
    return page.replace("<table ", f"<table data-kinds=\"{' '.join(kinds)}\" ", 1)


def render_report(results: list[dict], title: str, cell_ids: set[str] | None = None, fmt: str = "markdown",
                  paper: dict | None = None, ci: bool = False, n_boot: int = N_BOOT,
                  spreads: tuple[dict, str] | None = None, alpha: float = ALPHA, seeds_note: str = "") -> str:
    """The table of ``results`` (restricted to ``cell_ids``) in ``fmt``; ``paper`` from read_paper_tables;
    ``spreads`` from read_seed_spreads; ``alpha`` the letters' level, ``seeds_note`` what chose the seeds."""
    long = table_frame(results, cell_ids, n_boot, spreads=spreads[0] if spreads else None, alpha=alpha)
    if fmt == "csv":
        return long.to_csv(index=False)
    if long.empty:
        return f"## {title}\n\nNo finished cells yet: run `python -m bench run` first.\n"
    wide = wide_table(long, ci, paper)
    cells = long[long["kind"] == "cell"]
    seeds = int(cells["seeds"].max()) if len(cells) else 1
    images = {len(m["per_image"]["ids"]) for r in results if r.get("kind") == "cell"
              for m in r["metrics"].values() if "per_image" in m}
    notes = ["PSNR (dB) and SSIM on RGB in [0, 1] after uint8 quantisation; mIoU over the 19 Cityscapes "
             "classes as a fraction."]
    others = [m for m in ordered(long["metric"].unique()) if m not in DEFAULT_METRICS]
    if others:
        said = {m: d for r in results for m, d in (r.get("metric_info") or {}).items()}
        notes.append("; ".join(f"{HEAD[m]} ({'higher' if METRICS[m].higher_is_better else 'lower'} is better): "
                               f"{said.get(m) or METRICS[m].description}" for m in others) + ".")
    if len(cells):
        imgs = "/".join(map(str, sorted(images))) + " " if images else ""
        notes.append("Letters: within a backbone group, rows that share a letter are not significantly different; "
                     "the seed is the unit: a difference's variance is the paired bootstrap variance over the "
                     f"{imgs}val images ({n_boot} resamples) of the seed-averaged difference plus each row's seed "
                     "variance over its number of seeds, read against a t distribution (Welch-Satterthwaite), "
                     f"{_level(alpha)}, Holm-adjusted over the group's comparable pairs; bold: the top group."
                     + (f" [a, b]: {_confidence(alpha)} interval of the objective's value (seeds and images; one "
                        "seed: images only)." if ci else ""))
    if seeds_note:
        notes.append(seeds_note)
    elif len(cells) and cells.loc[cells["seeds"] >= 2, "seeds"].nunique() > 1:
        counts = cells.loc[cells["seeds"] >= 2, "seeds"]
        notes.append(f"Rows have unequal numbers of seeds ({counts.min()} to {counts.max()}): if seeds were added "
                     "where results were undecided (`bench run --seeds auto`), report with `--seeds auto` too, so "
                     "that the letters use the level that accounts for the looks.")
    ranked = cells["ranked"] if "ranked" in cells else pd.Series(dtype=bool)
    groups_n = cells.groupby(["backbone", "sigma", "metric"])["label"].transform("nunique") if len(cells) else None
    if len(cells) and (ranked.eq(False) & (groups_n > 1)).any():
        one = sorted(set(cells.loc[ranked.eq(False) & (groups_n > 1), "backbone"]))
        notes.append(f"**Not ranked** ({', '.join(one)}): rows trained with one seed. A seed moves mIoU by 3-30x the "
                     "image sampling error, so one network says little about its objective; letters compare only "
                     "rows of at least 2 seeds. To rank them: `bench run --seeds auto` (then `report --seeds auto`), "
                     "or `report --seed-spread FILE` with a measured seed spread.")
    if len(cells) and cells["backbone"].str.startswith(SCORED).any():
        notes.append("Group *scored*: restorers scored without training here (`bench score`: outside weights or "
                     "restored images); one fixed network has no seed spread to measure, so their letters compare "
                     "them with each other on the image sample alone, and say nothing about the objective that "
                     "trained them.")
    if spreads:
        notes.append(f"Single-seed rows use the supplied seed spread ({spreads[1] or 'no source given'}).")
    if seeds > 1:
        notes.append(f"Values are mean ± std over seeds (up to {seeds}); P: probability that the row beats "
                     f"`{REFERENCE}` over pairs of seeds (rliable's probability of improvement) with its 95 % "
                     "stratified-bootstrap interval.")
    groups = cells.groupby(["backbone", "sigma", "metric"])["label"].transform("nunique") if len(cells) else None
    if len(cells) and ("letters" not in cells or cells.loc[groups > 1, "letters"].isna().any()):
        notes.append("Values without letters come from results written before per-image values (PSNR, SSIM) or "
                     "per-image areas (mIoU) were kept: they cannot be resampled.")
    if paper:
        notes.append("Paper rows: the published value (our difference). Reduced embedded variants (`*_small`) are "
                     "compared with the paper's full backbones; on synthcity only the ordering is comparable.")
        protocols = sorted({r["config"].get("protocol", "ours") for r in results if r.get("kind") == "cell"})
        if protocols != ["authors"]:
            notes.append(f"**Warning**: our rows were measured with protocol {', '.join(protocols)}, the paper's with the "
                         "authors' (PSNR/SSIM after a 64 px border shave, their noise seeding, contextual centred by the "
                         "target batch); run with `--protocol authors` to compare like with like.")
    weights = {r["weights"]["segmenter"]["sha256"][:12] for r in results if r.get("weights", {}).get("segmenter")}
    if len(weights) == 1:
        notes.append(f"Segmenter weights sha256: {weights.pop()}.")
    elif weights:
        notes.append(f"**Warning**: these results come from {len(weights)} different segmenter weights "
                     f"({', '.join(sorted(weights))}); their mIoU values are not comparable. Use one results folder "
                     "per evaluator (--results).")
    if fmt == "latex":
        return "% " + title + "\n" + to_latex(wide) + "".join(f"% {n}\n" for n in notes)
    if fmt == "html":
        import html

        return f"<h2>{html.escape(title)}</h2>\n{to_html(wide)}\n" + "".join(f"<p>{html.escape(n)}</p>\n" for n in notes)
    return f"## {title}\n\n" + to_markdown(wide) + "\n\n" + "\n".join(notes) + "\n"
