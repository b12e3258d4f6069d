"""The paper's claims, one per row, checked on a results folder: holds, does not hold, or undecided.

    python -m bench report --grid paper-table1 --seeds auto --claims

A claim is about objectives within a backbone group at one metric, at every test sigma: "A beats B" (A's value
is significantly better than B's), "A is the best" (A is the group's best row and significantly better than the
runner-up) or "A is the lowest" (significantly below every other row). The test is the report's: the seed is the
unit, Holm over the group's comparable pairs, at the report's level (``--seeds auto``: its look level), so a
claim holds exactly when the table's letters separate the rows. *Does not hold*: the opposite is significant (B
beats A; a row beats the claimed best). *Undecided*: neither, or a row with one seed (no seed spread: no claim).
Each verdict gives the difference (A - B; the best minus the runner-up), its interval and the seeds of the rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.frame import image_frame
from bench.metrics import METRICS
from bench.report import DIGITS, HEAD, REFERENCE, group_seed, row_samples
from bench.stats import ALPHA, N_BOOT, analyse_group


@dataclass(frozen=True)
class Claim:
    text: str  # as the paper says it
    kind: str  # "beats", "best" or "lowest"
    metric: str
    row: str  # the objective the claim is about
    other: str = ""  # "beats": the objective it beats


PAPER_CLAIMS: tuple[Claim, ...] = (
    Claim("contextual has the lowest PSNR (Table 1)", "lowest", "psnr", "contextual"),
    Claim("D2SM w/ Internal has the best mIoU on each backbone (Table 1)", "best", "miou", "d2sm_internal"),
    Claim("D2SM w/ Internal beats L1 in mIoU (Table 1)", "beats", "miou", "d2sm_internal", REFERENCE),
    Claim("D2SM w/o Internal beats L1 in mIoU (Table 1)", "beats", "miou", "d2sm", REFERENCE),
    Claim("D2SM w/ Internal beats D2SM w/o Internal in mIoU (Table 1)", "beats", "miou", "d2sm_internal", "d2sm"),
    Claim("D2SM w/ Internal beats perceptual in mIoU (Table 1)", "beats", "miou", "d2sm_internal", "perceptual"),
    Claim("D2SM w/ Internal beats cross-entropy in mIoU (Table 1)", "beats", "miou", "d2sm_internal",
          "cross_entropy"),
    Claim("D2SM w/ Internal beats iKLD in mIoU (Table 2)", "beats", "miou", "d2sm_internal", "ikld"),
    Claim("D2SM w/ Internal beats JSD in mIoU (Table 2)", "beats", "miou", "d2sm_internal", "jsd"),
    Claim("D2SM w/ Internal beats GAN in mIoU (Table 2)", "beats", "miou", "d2sm_internal", "gan"),
)


def _verdict(claim: Claim, other: str, out: dict, higher: bool) -> tuple[str, float, float, float, int]:
    """(verdict, difference, its low, its high, seeds) of ``claim`` on one group analysed with ``other`` (B, or the
    runner-up) as the reference, so that ``out[claim.row]`` holds the difference to it with its interval."""
    a = out[claim.row]
    diff, low, high = a["diff"], a.get("diff_low", float("nan")), a.get("diff_high", float("nan"))
    if claim.kind == "beats":
        seeds = min(a["seeds"], out[other]["seeds"])
        if not (a["ranked"] and out[other]["ranked"]):  # no seed spread: no interval for the objective either
            return "undecided (one seed)", diff, float("nan"), float("nan"), seeds
        if other not in a["differs"]:
            return "undecided", diff, low, high, seeds
        return ("holds" if (diff > 0) == higher else "does not hold"), diff, low, high, seeds
    ranked = [k for k, v in out.items() if v["ranked"]]
    if not a["ranked"] or len(ranked) < 2:
        return "undecided (one seed)", diff, float("nan"), float("nan"), a["seeds"]
    seeds = min(out[k]["seeds"] for k in ranked)
    up = 1 if higher == (claim.kind == "best") else -1  # the direction the claim puts the row in
    others = [k for k in ranked if k != claim.row]
    if any(up * (out[k]["value"] - a["value"]) > 0 and k in a["differs"] for k in others):
        return "does not hold", diff, low, high, seeds
    if all(k in a["differs"] for k in others) and all(up * (a["value"] - out[k]["value"]) > 0 for k in others):
        return "holds", diff, low, high, seeds
    return "undecided", diff, low, high, seeds


def _runner_up(samples: dict, claim: Claim, higher: bool) -> str | None:
    """The row closest to ``claim.row`` on the side where the claim puts every other row (by value)."""
    values = {k: s.point() for k, s in samples.items()}
    up = 1 if higher == (claim.kind == "best") else -1
    others = sorted((k for k in values if k != claim.row), key=lambda k: up * values[k], reverse=True)
    return others[0] if others else None


def check_claims(results: list[dict], cell_ids: set[str] | None = None, claims: tuple[Claim, ...] = PAPER_CLAIMS,
                 n_boot: int = N_BOOT, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (claim, backbone, sigma): verdict, diff, diff_low, diff_high (the (1 - alpha) interval), seeds."""
    cells = [r for r in results if r.get("kind") == "cell" and (cell_ids is None or r["cell_id"] in cell_ids)]
    images = image_frame(cells)
    rows = []
    if images.empty:
        return pd.DataFrame(columns=["claim", "backbone", "sigma", "metric", "verdict", "diff", "diff_low",
                                     "diff_high", "seeds"])
    for (backbone, sigma), group in images.groupby(["backbone", "sigma"], sort=False):
        for metric in dict.fromkeys(c.metric for c in claims):
            samples = row_samples(group, metric)
            higher = METRICS[metric].higher_is_better
            cache: dict[str, dict] = {}
            for claim in (c for c in claims if c.metric == metric):
                if claim.row not in samples:
                    continue
                other = claim.other if claim.kind == "beats" else _runner_up(samples, claim, higher)
                if other is None or other not in samples:
                    continue
                if other not in cache:  # the difference to ``other`` with its interval: ``other`` as the reference
                    cache[other] = analyse_group(samples, higher, other, n_boot, group_seed(backbone, sigma, metric),
                                                 alpha)
                rows.append((claim.text, backbone, sigma, metric, *_verdict(claim, other, cache[other], higher)))
    return pd.DataFrame(rows, columns=["claim", "backbone", "sigma", "metric", "verdict", "diff", "diff_low",
                                       "diff_high", "seeds"])


def render_claims(df: pd.DataFrame, alpha: float = ALPHA) -> str:
    """Markdown: one row per (claim, backbone), a column per sigma with "verdict: diff [low, high]"."""
    if df.empty:
        return "No claim applies: the results hold none of the rows the paper's claims name.\n"
    sigmas = sorted(df["sigma"].unique(), key=float)
    lines = ["| Claim | Backbone | " + " | ".join(f"σ={s}" for s in sigmas) + " | seeds |",
             "|---|---|" + "---|" * len(sigmas) + "---:|"]
    for (claim, backbone), g in df.groupby(["claim", "backbone"], sort=False):
        by = {r["sigma"]: r for _, r in g.iterrows()}
        parts = []
        for s in sigmas:
            r = by.get(s)
            if r is None:
                parts.append("–")
                continue
            d = DIGITS[r["metric"]]
            interval = f" [{r['diff_low']:+.{d}f}, {r['diff_high']:+.{d}f}]" if pd.notna(r["diff_low"]) else ""
            parts.append(f"**{r['verdict']}**: {r['diff']:+.{d}f}{interval}" if pd.notna(r["diff"]) else r["verdict"])
        seeds = "/".join(map(str, sorted(set(g["seeds"]))))
        lines.append(f"| {claim} | {backbone} | " + " | ".join(parts) + f" | {seeds} |")
    level = "95 %" if alpha == ALPHA else f"{100 * (1 - alpha):.4g} %"
    lines += ["", f"Difference: the claim's row minus the other ({HEAD['psnr']} in dB, {HEAD['miou']} as a fraction; "
              "\"best\"/\"lowest\": minus the runner-up), with its " + level + " interval; verdicts from the report's "
              "test (the seed as the unit, Holm within the backbone group). seeds: the fewest of the rows compared."]
    return "\n".join(lines) + "\n"
