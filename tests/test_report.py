import numpy as np

from bench.report import render_report, table_frame

N_IMAGES = 8


def _per_image(mean: float, spread: float, seed: int) -> list[float]:
    """``N_IMAGES`` values around ``mean`` (their mean is exactly ``mean``)."""
    v = np.random.default_rng(seed).normal(0.0, spread, N_IMAGES)
    return (v - v.mean() + mean).tolist()


def _areas(miou: float, seed: int) -> dict:
    """Per-image intersect/union counts of 19 classes whose pooled mIoU is ``miou``."""
    rng = np.random.default_rng(seed)
    union = rng.integers(50, 100, (N_IMAGES, 19))
    inter = np.floor(union * miou).astype(int)
    return {"intersect": inter.tolist(), "union": union.tolist()}


def _cell(backbone, objective, values, seed=0, images=True):
    metrics = {}
    for s, (p, ss, m) in values.items():
        metrics[s] = {"psnr": p, "ssim": ss, "miou": m}
        if images:
            metrics[s]["per_image"] = {"ids": [f"img{i}" for i in range(N_IMAGES)], "psnr": _per_image(p, 0.05, 1),
                                       "ssim": _per_image(ss, 0.001, 2), **_areas(m, 3)}
            metrics[s]["miou"] = float(np.mean(np.array(metrics[s]["per_image"]["intersect"]).sum(0)
                                               / np.array(metrics[s]["per_image"]["union"]).sum(0)))
    return {"kind": "cell", "cell_id": f"{backbone}-{objective}-{seed}", "label": objective, "seed": seed,
            "slug": f"{backbone}__{objective}__s{seed}", "config": {"backbone": backbone, "objective": objective},
            "metrics": metrics, "weights": {"segmenter": {"sha256": "abcdef0123456789"}}}


def _seeds(backbone, objective, values, spread=(0.1, 0.002, 0.002)):
    """Three seeds of one row, spread by -1, 0, +1 x ``spread`` (PSNR, SSIM, mIoU) around ``values``."""
    return [_cell(backbone, objective, {s: tuple(v + k * d for v, d in zip(vals, spread, strict=True))
                                        for s, vals in values.items()}, seed=i)
            for i, k in enumerate((-1, 0, 1))]


ONE_SEED = [
    _cell("ffdnet", "l1", {"25": (30.0, 0.9, 0.5), "50": (26.0, 0.8, 0.4)}),
    _cell("ffdnet", "ssim", {"25": (30.5, 0.92, 0.5), "50": (25.5, 0.85, 0.35)}),
]
RESULTS = [
    *_seeds("ffdnet", "l1", {"25": (30.0, 0.9, 0.5), "50": (26.0, 0.8, 0.4)}),
    *_seeds("ffdnet", "ssim", {"25": (30.5, 0.92, 0.5), "50": (25.5, 0.85, 0.35)}),
    _cell("cbdnet", "l1", {"25": (31.0, 0.93, 0.6)}),
    {"kind": "reference", "metrics": {
        "noisy input": {"25": {"psnr": 20.17, "ssim": 0.41, "miou": 0.3}, "50": {"psnr": 14.2, "ssim": 0.2, "miou": 0.1}},
        "clean input": {"25": {"psnr": float("inf"), "ssim": 1.0, "miou": 0.9},
                        "50": {"psnr": float("inf"), "ssim": 1.0, "miou": 0.9}}},
     "weights": {"segmenter": {"sha256": "abcdef0123456789"}}},
]

GOLDEN = """\
| Backbone | Objective | σ=25 PSNR ↑ | σ=25 SSIM ↑ | σ=25 mIoU ↑ | σ=50 PSNR ↑ | σ=50 SSIM ↑ | σ=50 mIoU ↑ |
|---|---|---:|---:|---:|---:|---:|---:|
| ffdnet | l1 | 30.00 ± 0.10 (b) | 0.9000 ± 0.0020 (b) | **0.4945 ± 0.0040** (a) | **26.00 ± 0.10** (a) | 0.8000 ± 0.0020 (b) | **0.3936 ± 0.0012** (a) |
|  | ssim | **30.50 ± 0.10** (a, P 1.00 [1.00, 1.00]) | **0.9200 ± 0.0020** (a, P 1.00 [1.00, 1.00]) | **0.4945 ± 0.0040** (a, P 0.50 [0.17, 0.83]) | 25.50 ± 0.10 (b, P 0.00 [0.00, 0.00]) | **0.8500 ± 0.0020** (a, P 1.00 [1.00, 1.00]) | 0.3436 ± 0.0018 (b, P 0.00 [0.00, 0.00]) |
| cbdnet | l1 | 31.00 | 0.9300 | 0.5944 | – | – | – |
| *reference* | *noisy input* | 20.17 | 0.4100 | 0.3000 | 14.20 | 0.2000 | 0.1000 |
| *reference* | *clean input* | ∞ | 1.0000 | 0.9000 | ∞ | 1.0000 | 0.9000 |"""


def test_golden_markdown():
    text = render_report(RESULTS, "t")
    assert GOLDEN in text, text
    assert "Not ranked" not in text
    assert "abcdef012345" in text and "share a letter are not significantly different" in text
    assert render_report(RESULTS, "t") == text  # seeded: the same results give the same table


def test_letters_follow_the_seed_aware_test_and_ci_on_demand():
    long = table_frame(RESULTS)
    row = long[(long.label == "ssim") & (long.sigma == "25") & (long.metric == "psnr")].iloc[0]
    assert row.ci_low <= 30.5 <= row.ci_high and abs(row["diff"] - 0.5) < 1e-9 and row["diff_low"] > 0  # real, vs l1
    assert row.ci_basis == "seeds" and row.seeds == 3 and row.diff_p < 0.05 and row.ranked
    with_ci = render_report(RESULTS, "t", ci=True)
    assert f"**30.50 ± 0.10 [{row.ci_low:.2f}, {row.ci_high:.2f}]** (a" in with_ci
    assert "[30." not in render_report(RESULTS, "t")


def test_single_seed_rows_are_not_ranked_and_the_table_says_what_ranks_them(tmp_path):
    from bench.report import read_seed_spreads

    text = render_report(ONE_SEED, "t")
    assert "| ffdnet | l1 | 30.00 (not ranked) |" in text and "**" not in text.split("PSNR (dB)")[0]
    assert "**Not ranked** (ffdnet): rows trained with one seed" in text and "--seeds auto" in text
    spread = tmp_path / "spread.json"
    spread.write_text('{"source": "training_levers, seeds 0-4", "seeds": 5, "std": {"*": {"psnr": 0.01, '
                      '"ssim": 0.0001, "miou": 0.0005}}}')
    ranked = render_report(ONE_SEED, "t", spreads=read_seed_spreads(spread))
    assert "| ffdnet | l1 | 30.00 (b) |" in ranked and "supplied seed spread (training_levers, seeds 0-4)" in ranked
    long = table_frame(ONE_SEED, spreads=read_seed_spreads(spread)[0])
    assert set(long[long.kind == "cell"].ci_basis) == {"supplied spread"}


def test_the_same_results_give_the_same_bytes_under_any_hash_seed(tmp_path):
    """Letters are named from a fixed order: two processes with other PYTHONHASHSEED print identical reports."""
    import json
    import os
    import subprocess
    import sys

    many = [c for o, base in [("l1", 30.0), ("ssim", 30.04), ("d2sm", 30.08), ("gan", 29.96), ("jsd", 30.12)]
            for c in _seeds("ffdnet", o, {"25": (base, 0.9, 0.5)}, spread=(0.02, 0.002, 0.002))]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(many))
    code = ("import json, sys; from bench.report import render_report; "
            f"print(render_report(json.load(open({str(path)!r})), 't'))")
    outs = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": h}, capture_output=True,
                           text=True, check=True).stdout for h in ("0", "1", "12345")}
    assert len(outs) == 1 and "(a" in outs.pop()


def test_grid_filter_and_empty():
    text = render_report(RESULTS, "t", cell_ids={"ffdnet-l1"})
    assert "ssim |" not in text.split("\n", 4)[4] and "cbdnet" not in text
    assert "No finished cells" in render_report([], "t")


def test_mixed_segmenter_weights_are_flagged():
    other = _cell("ffdnet", "gan", {"25": (29.0, 0.9, 0.5)})
    other["weights"]["segmenter"]["sha256"] = "ffff00000000"
    assert "not comparable" in render_report(RESULTS + [other], "t")
    assert "not comparable" not in render_report(RESULTS, "t")


def _seeded(objective, seed, psnr):
    return _cell("ffdnet_small", objective, {"25": (psnr, 0.9, 0.5)}, seed=seed)


def test_several_seeds_give_mean_std_letters_that_see_the_seed_spread_and_p_improvement():
    results = [_seeded("l1", 0, 30.0), _seeded("l1", 1, 31.0), _seeded("l1", 2, 29.0),
               _seeded("d2sm", 0, 30.5), _seeded("d2sm", 1, 30.5), _seeded("d2sm", 2, 30.5)]
    text = render_report(results, "t")
    # l1's seeds spread by 1 dB: d2sm's +0.5 is not a real difference, whatever the images say
    assert "| ffdnet_small | l1 | **30.00 ± 1.00** (a) |" in text
    assert "| **30.50 ± 0.00** (a, P 0.67 [" in text and "mean ± std over seeds" in text


def test_paper_numbers_sit_beside_ours_with_the_difference(tmp_path):
    from bench.report import read_paper_tables

    paper_csv = tmp_path / "paper.csv"
    paper_csv.write_text("table,backbone,objective,sigma,psnr,ssim,miou\n1,ffdnet,l1,25,35.033,0.925,0.605\n")
    text = render_report([_cell("ffdnet_small", "l1", {"25": (30.0, 0.9, 0.5)}, images=False)], "t",
                         paper=read_paper_tables(paper_csv))
    assert "|  | *↳ paper (Δ ours − paper)* | *35.03 (-5.03)* | *0.9250 (-0.0250)* | *0.6050 (-0.1050)* |" in text


def test_the_committed_paper_tables_parse():
    from pathlib import Path

    from bench.report import read_paper_tables

    paper = read_paper_tables(Path(__file__).resolve().parents[1] / "results" / "paper_tables.csv")
    assert paper[("ffdnet", "d2sm_internal", "25", "miou")] == 0.644
    assert paper[("sadnet", "l1", "50", "psnr")] > 30


def test_csv_latex_html_carry_the_same_numbers():
    import io

    import pandas as pd

    rows = pd.read_csv(io.StringIO(render_report(RESULTS, "t", fmt="csv")), dtype={"sigma": str})
    l1_25 = rows[(rows.backbone == "ffdnet") & (rows.label == "l1") & (rows.sigma == "25") & (rows.metric == "psnr")]
    assert l1_25.value.item() == 30.0 and l1_25.letters.item() == "b" and l1_25.kind.item() == "cell"
    ssim_25 = rows[(rows.backbone == "ffdnet") & (rows.label == "ssim") & (rows.sigma == "25") & (rows.metric == "psnr")]
    assert ssim_25.diff_low.item() < 0.5 < ssim_25.diff_high.item() and 0 <= ssim_25.diff_p.item() < 0.05
    assert {"p_improve_low", "p_improve_high", "ci_basis", "diff_df"} <= set(rows.columns)
    assert ((rows.kind == "reference") & (rows.label == "clean input")).any()
    latex = render_report(RESULTS, "t", fmt="latex")
    assert r"\bfseries 30.50 $\pm$ 0.10 (a" in latex and r"$\infty$" in latex and r"\toprule" in latex
    page = render_report(RESULTS, "t", fmt="html")
    assert "30.50 ± 0.10 (a" in page and "font-weight: bold" in page and "noisy input" in page


def test_latex_escapes_special_characters():
    odd = _cell("ffdnet", "d2sm (queue_size=128 & 50% #1 $x ~ ^{y} \\z)", {"25": (30.0, 0.9, 0.5)})
    latex = render_report([odd], "t", fmt="latex")
    assert r"queue\_size=128 \& 50\% \#1 \$x \textasciitilde \space \textasciicircum \{y\} \textbackslash z" in latex


def test_old_results_without_per_image_areas_are_reported_not_resampled():
    old = [_cell("ffdnet", "l1", {"25": (30.0, 0.9, 0.5)}, images=False),
           _cell("ffdnet", "ssim", {"25": (30.5, 0.92, 0.5)}, images=False)]
    text = render_report(old, "t")
    assert "| ffdnet | l1 | 30.00 | 0.9000 | 0.5000 |" in text and "cannot be resampled" in text


def test_pareto_front():
    from bench.plots import pareto_front

    pts = [(20.0, 0.5), (21.0, 0.4), (19.0, 0.45), (21.0, 0.5), (18.0, 0.6)]
    assert pareto_front(pts) == [4, 3]  # (18, .6) and (21, .5); (20, .5) is beaten by (21, .5)
    wide = [((x - 2, x + 2), (y - 0.2, y + 0.2)) for x, y in pts]  # overlapping intervals: nothing is beaten
    assert pareto_front(pts, wide) == [4, 2, 0, 1, 3]


def test_plots_carry_the_uncertainty(tmp_path):
    from bench.plots import class_iou_changes, write_plots

    names, change, significant = class_iou_changes(RESULTS, "50")
    assert names == ["ffdnet/ssim"] and change.shape == (19, 1) and significant.dtype == bool
    written = write_plots(RESULTS, tmp_path)
    assert {p.name for p in written} >= {"psnr_vs_miou_sigma25.png", "miou_change_per_class_sigma50.png"}


def test_latex_and_html_with_the_same_objectives_in_several_groups():
    two = RESULTS[:6] + [*_seeds("cbdnet", "l1", {"25": (31.0, 0.93, 0.6), "50": (27.0, 0.8, 0.4)}),
                         *_seeds("cbdnet", "ssim", {"25": (31.5, 0.94, 0.6), "50": (26.0, 0.85, 0.35)})]
    latex = render_report(two, "t", fmt="latex")
    assert latex.count(r" & ssim & ") == 2 and r"\bfseries" in latex
    assert render_report(two, "t", fmt="html").count(">ssim<") == 2
