"""``bench report --claims``: each of the paper's claims holds, does not hold or is undecided, by the report's test."""
from test_report import _cell, _seeds

from bench.claims import check_claims, render_claims

ROWS = {"l1": (30.0, 0.50), "d2sm_internal": (30.0, 0.60), "d2sm": (30.0, 0.55), "perceptual": (30.0, 0.5505),
        "gan": (29.9, 0.65), "contextual": (28.0, 0.45), "ikld": (30.0, 0.6002)}
RESULTS = [c for o, (psnr, miou) in ROWS.items() for c in _seeds("ffdnet_small", o, {"25": (psnr, 0.9, miou)})]
RESULTS.append(_cell("ffdnet_small", "jsd", {"25": (30.0, 0.9, 0.5)}))  # one seed


def _verdicts(results=RESULTS, **kw):
    df = check_claims(results, n_boot=500, **kw)
    return {r["claim"].split(" (Table")[0]: r["verdict"] for _, r in df.iterrows()}, df


def test_each_claim_gets_the_verdict_the_rows_support():
    v, df = _verdicts()
    assert v == {  # cross-entropy has no row: its claim does not apply
        "contextual has the lowest PSNR": "holds",
        "D2SM w/ Internal has the best mIoU on each backbone": "does not hold",  # gan is significantly better
        "D2SM w/ Internal beats L1 in mIoU": "holds",
        "D2SM w/o Internal beats L1 in mIoU": "holds",
        "D2SM w/ Internal beats D2SM w/o Internal in mIoU": "holds",
        "D2SM w/ Internal beats perceptual in mIoU": "holds",
        "D2SM w/ Internal beats iKLD in mIoU": "undecided",  # 0.0002 apart, seeds spread 0.002
        "D2SM w/ Internal beats JSD in mIoU": "undecided (one seed)",
        "D2SM w/ Internal beats GAN in mIoU": "does not hold",
    }
    row = df[df["claim"].str.startswith("D2SM w/ Internal beats L1")].iloc[0]
    assert abs(row["diff"] - 0.10) < 0.01 and row["diff_low"] < row["diff"] < row["diff_high"] and row["seeds"] == 3
    best = df[df["claim"].str.contains("best mIoU")].iloc[0]
    assert best["diff"] < 0  # d2sm_internal minus the runner-up above it (gan)


def test_without_the_better_row_the_best_claim_holds_and_the_table_renders():
    v, df = _verdicts([r for r in RESULTS if r["label"] not in ("gan",)])
    assert v["D2SM w/ Internal has the best mIoU on each backbone"] == "undecided"  # ikld is as good
    v, df = _verdicts([r for r in RESULTS if r["label"] not in ("gan", "ikld")])
    assert v["D2SM w/ Internal has the best mIoU on each backbone"] == "holds"
    text = render_claims(df)
    assert "| D2SM w/ Internal beats L1 in mIoU (Table 1) | ffdnet_small | **holds**: +0.099" in text
    assert "95 % interval" in text and "| ffdnet_small | **undecided (one seed)**: +0.0970 | 1 |" in text
    assert "lowest PSNR (Table 1) | ffdnet_small | **holds**: -2.00 [" in text and "| 3 |" in text.splitlines()[2]


def test_a_stricter_level_can_only_turn_verdicts_undecided():
    loose, _ = _verdicts()
    strict, _ = _verdicts(alpha=1e-6)
    assert all(strict[k] == loose[k] or strict[k] == "undecided" for k in loose)
    assert "No claim applies" in render_claims(check_claims([]))
