from bench.report import rank, render_report


def test_rank_handles_ties_missing_and_direction():
    assert rank([3.0, 5.0, 5.0, None, 1.0], higher_is_better=True) == [3, 1, 1, None, 4]
    assert rank([3.0, 5.0, 5.0, None, 1.0], higher_is_better=False) == [2, 3, 3, None, 1]


def _cell(backbone, objective, values):
    metrics = {s: {"psnr": p, "ssim": ss, "miou": m} for s, (p, ss, m) in values.items()}
    return {"kind": "cell", "cell_id": f"{backbone}-{objective}", "label": objective,
            "config": {"backbone": backbone, "objective": objective},
            "metrics": metrics, "weights": {"segmenter": {"sha256": "abcdef0123456789"}}}


RESULTS = [
    _cell("ffdnet", "l1", {"25": (30.0, 0.9, 0.5), "50": (26.0, 0.8, 0.4)}),
    _cell("ffdnet", "ssim", {"25": (30.5, 0.92, 0.5), "50": (25.5, 0.85, 0.35)}),
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
| ffdnet | l1 | 30.00 (2) | 0.9000 (2) | **0.5000** (1) | **26.00** (1) | 0.8000 (2) | **0.4000** (1) |
|  | ssim | **30.50** (1) | **0.9200** (1) | **0.5000** (1) | 25.50 (2) | **0.8500** (1) | 0.3500 (2) |
| cbdnet | l1 | 31.00 | 0.9300 | 0.6000 | – | – | – |
| *reference* | *noisy input* | 20.17 | 0.4100 | 0.3000 | 14.20 | 0.2000 | 0.1000 |
| *reference* | *clean input* | ∞ | 1.0000 | 0.9000 | ∞ | 1.0000 | 0.9000 |"""


def test_golden_markdown():
    text = render_report(RESULTS, "t")
    assert GOLDEN in text
    assert "abcdef012345" in text


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
    c = _cell("ffdnet_small", objective, {"25": (psnr, 0.9, 0.5)})
    c["cell_id"] += f"-s{seed}"
    return c


def test_several_seeds_give_mean_std_and_how_often_the_rank_holds():
    results = [_seeded("l1", 0, 30.0), _seeded("l1", 1, 31.0), _seeded("l1", 2, 29.0),
               _seeded("d2sm", 0, 30.5), _seeded("d2sm", 1, 30.5), _seeded("d2sm", 2, 30.5)]
    text = render_report(results, "t")
    # l1 mean 30.0 +- 1.0 ranks 2nd; it is 2nd in seeds 0 and 2, 1st in seed 1
    assert "| ffdnet_small | l1 | 30.00 ± 1.00 (2, 2/3) |" in text
    assert "| **30.50 ± 0.00** (1, 2/3) |" in text and "mean ± std over seeds" in text


def test_paper_numbers_sit_beside_ours_with_the_difference(tmp_path):
    from bench.report import read_paper_tables

    paper_csv = tmp_path / "paper.csv"
    paper_csv.write_text("table,backbone,objective,sigma,psnr,ssim,miou\n1,ffdnet,l1,25,35.033,0.925,0.605\n")
    text = render_report([_cell("ffdnet_small", "l1", {"25": (30.0, 0.9, 0.5)})], "t",
                         paper=read_paper_tables(paper_csv))
    assert "|  | *↳ paper (Δ ours − paper)* | *35.03 (-5.03)* | *0.9250 (-0.0250)* | *0.6050 (-0.1050)* |" in text


def test_the_committed_paper_tables_parse():
    from pathlib import Path

    from bench.report import read_paper_tables

    paper = read_paper_tables(Path(__file__).resolve().parents[1] / "results" / "paper_tables.csv")
    assert paper[("ffdnet", "d2sm_internal", "25", "miou")] == 0.644
    assert paper[("sadnet", "l1", "50", "psnr")] > 30


def test_csv_latex_html_carry_the_same_numbers():
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(render_report(RESULTS, "t", fmt="csv"))))
    l1_25 = next(r for r in rows if r["backbone"] == "ffdnet" and r["objective"] == "l1" and r["sigma"] == "25"
                 and r["metric"] == "miou")
    assert float(l1_25["value"]) == 0.5 and l1_25["rank"] == "1" and l1_25["kind"] == "cell"
    assert any(r["kind"] == "reference" and r["objective"] == "clean input" for r in rows)
    latex = render_report(RESULTS, "t", fmt="latex")
    assert r"\textbf{30.50}$^{1}$" in latex and r"$\infty$" in latex and r"\multicolumn{3}{c}{$\sigma=25$}" in latex
    page = render_report(RESULTS, "t", fmt="html")
    assert "<b>30.50 (1)</b>" in page and "<tr class=\"reference\">" in page


def test_pareto_front():
    from bench.plots import pareto_front

    pts = [(20.0, 0.5), (21.0, 0.4), (19.0, 0.45), (21.0, 0.5), (18.0, 0.6)]
    assert pareto_front(pts) == [4, 3]  # (18, .6) and (21, .5); (20, .5) is beaten by (21, .5)
