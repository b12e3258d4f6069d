"""Calibration of the report's significance claims on groups with a known truth and the variance users meet: a seed
effect 3 to 30 times the image sampling error, as measured (docs/statistics.md).

    python -m bench.benchmarks.calibration [--trials 1000] [--resamples 500]

Each trial builds one backbone group of ``rows`` rows x ``seeds`` seeds over 96 val images, runs
``bench.stats.analyse_group`` and records which pairs it calls different (no shared letter). Null groups: every row
has the same mean, so any call is a false positive (per pair, and "any pair" of the group, the family-wise rate that
Holm bounds). Power: one row shifted by 2, 4 or 6 seed standard deviations from the others; found when it is called
different from every other row in the right direction. Metrics: a PSNR-like mean over images, and mIoU from
per-image intersect/union areas of 19 classes. ``tests/test_calibration.py`` runs the same scenarios with fewer
trials and asserts the bounds; README and docs/statistics.md quote this script's figures (--trials 400).
"""
from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np

from bench.seed_rule import Family, plan
from bench.stats import RowSample, SeedSpread, analyse_group

N_IMAGES, N_CLASSES = 96, 19
IMAGE_SD = 0.5  # PSNR-like: per-image noise of one network (dB); its mean over 96 images has SE 0.05
MIOU_IMAGE_SD = 0.05  # per image and class IoU noise


def group(rng: np.random.Generator, rows: int, seeds: int, seed_sd: float, metric: str = "psnr",
          shift: float = 0.0) -> dict[str, RowSample]:
    """One backbone group: row 0 is "l1", the last row is shifted by ``shift`` (in the metric's units); each seed
    adds N(0, seed_sd) to its row, each image its own difficulty (shared by every row) and each network's noise."""
    out = {}
    if metric == "psnr":
        level = rng.normal(25.0, 2.0, N_IMAGES)
        for r in range(rows):
            mu = shift if r == rows - 1 else 0.0
            v = level[None] + mu + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, IMAGE_SD, (seeds, N_IMAGES))
            out["l1" if r == 0 else f"row{r}"] = RowSample(values=v)
        return out
    union = rng.integers(200, 2000, (N_IMAGES, N_CLASSES)).astype(float)
    union[rng.random((N_IMAGES, N_CLASSES)) < 0.3] = 0  # classes absent from an image
    base = rng.uniform(0.3, 0.8, N_CLASSES)
    for r in range(rows):
        mu = shift if r == rows - 1 else 0.0
        q = (base[None, None] + mu + rng.normal(0, seed_sd, (seeds, 1, 1))
             + rng.normal(0, MIOU_IMAGE_SD, (seeds, N_IMAGES, N_CLASSES)))
        inter = np.round(union[None] * np.clip(q, 0, 1))
        out["l1" if r == 0 else f"row{r}"] = RowSample(areas=np.stack([inter, np.broadcast_to(union, inter.shape)],
                                                                      axis=2))
    return out


def image_se(metric: str) -> float:
    """The image sampling standard error of the difference of two networks (one seed each, paired over images;
    measured on simulated rows): the ~0.02 dB / 0.0023 mIoU that the seed spread is compared with."""
    rng = np.random.default_rng(0)
    out = analyse_group(group(rng, 2, 1, 0.0, metric), n_boot=4000, seed=0)["row1"]
    return (out["diff_high"] - out["diff_low"]) / (2 * 1.96)


def calls(out: dict) -> set[frozenset]:
    """The pairs of ranked rows called different (no shared letter)."""
    ranked = [k for k, v in out.items() if v["ranked"]]
    return {frozenset(p) for p in itertools.combinations(ranked, 2)
            if not set(out[p[0]]["letters"]) & set(out[p[1]]["letters"])}


def null_rates(rows: int, seeds: int, ratio: float, metric: str, trials: int, resamples: int,
               supplied: bool = False) -> tuple[float, float]:
    """(false-positive rate per pair, rate of groups with any false positive) at seed sd = ``ratio`` x image SE;
    ``supplied``: single-seed rows ranked with the true seed spread supplied (measured over 5 seeds)."""
    se = image_se(metric)
    rng = np.random.default_rng(1000 * rows + 10 * seeds + int(ratio))
    per_pair, anyp, pairs = 0, 0, rows * (rows - 1) // 2
    for t in range(trials):
        spread = SeedSpread(ratio * se * float(np.sqrt(rng.chisquare(4) / 4)), 5) if supplied else None
        found = calls(analyse_group(group(rng, rows, seeds, ratio * se, metric), n_boot=resamples, seed=t,
                                    spread=spread))
        per_pair += len(found)
        anyp += bool(found)
    return per_pair / (trials * pairs), anyp / trials


def power(rows: int, seeds: int, ratio: float, effect: float, metric: str, trials: int, resamples: int) -> float:
    """How often the row shifted by ``effect`` seed sds is called better than every other row."""
    se = image_se(metric)
    rng = np.random.default_rng(7 + rows + seeds + int(effect))
    hits = 0
    for t in range(trials):
        g = group(rng, rows, seeds, ratio * se, metric, shift=effect * ratio * se)
        out = analyse_group(g, n_boot=resamples, seed=t)
        best = f"row{rows - 1}"
        hits += all(frozenset({best, k}) in calls(out) for k in g if k != best) and out[best]["letters"] == "a"
    return hits / trials


def first_seeds(sample: RowSample, n: int) -> RowSample:
    return RowSample(values=sample.values[:n]) if sample.values is not None else RowSample(areas=sample.areas[:n])


def auto_trial(g: dict[str, RowSample], metric: str, max_seeds: int, resamples: int, seed: int
               ) -> tuple[set[frozenset], dict[str, int], dict, float]:
    """One ``--seeds auto`` run on a group whose rows hold ``max_seeds`` seeds each: the rule draws on the first n
    seeds of each row as it asks for them. (the pairs called different by the final table, seeds per row, the final
    analysis, its level)."""
    labels = list(g)

    def families(seeds: dict[str, int]) -> list[Family]:
        return [Family(metric, {k: first_seeds(g[k], seeds[k]) for k in labels}, {k: k for k in labels},
                       True, "l1", seed)]

    p = plan(labels, families, max_seeds, n_boot=resamples)
    final = analyse_group({k: first_seeds(g[k], p.seeds[k]) for k in labels}, True, "l1", resamples, seed, p.alpha)
    return calls(final), p.seeds, final, p.alpha


def auto_rates(rows: int, ratio: float, metric: str, trials: int, resamples: int, max_seeds: int = 8,
               effect: float = 0.0) -> dict[str, float]:
    """``--seeds auto`` on null groups (``effect`` 0: any call is false) or with the last row shifted by ``effect``
    seed sds: the false-positive rate per pair and for any pair, the power (the shifted row called better than
    every other row), and the mean seeds per row."""
    se = image_se(metric)
    rng = np.random.default_rng(5000 + 100 * rows + int(ratio) + int(10 * effect))
    pairs, false, anyp, hits, seeds = rows * (rows - 1) // 2, 0, 0, 0, 0
    for t in range(trials):
        g = group(rng, rows, max_seeds, ratio * se, metric, shift=effect * ratio * se)
        found, used, final, _ = auto_trial(g, metric, max_seeds, resamples, t)
        best = f"row{rows - 1}"
        wrong = found if effect == 0 else {p for p in found if best not in p}
        false += len(wrong)
        anyp += bool(wrong)
        hits += effect > 0 and all(frozenset({best, k}) in found for k in g if k != best) and \
            final[best]["letters"] == "a"
        seeds += sum(used.values()) / rows
    return {"per_pair": false / (trials * pairs), "any_pair": anyp / trials, "power": hits / trials,
            "seeds": seeds / trials}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--resamples", type=int, default=500)
    p.add_argument("--ratio", type=float, nargs="+", default=[3.0, 10.0, 30.0],
                   help="seed sd / image SE of the scenarios")
    args = p.parse_args(argv)
    print(f"{args.trials} trials, {args.resamples} image resamples; 96 images; 5 % level, Holm within the group\n")
    print("| metric | rows | seeds | seed sd / image SE | false positives per pair | any pair of the group |")
    print("|---|---:|---:|---:|---:|---:|")
    for metric in ("psnr", "miou"):
        for rows in (5, 11):
            for seeds in (1, 3, 5):
                for ratio in args.ratio:
                    fp, anyp = null_rates(rows, seeds, ratio, metric, args.trials, args.resamples)
                    print(f"| {metric} | {rows} | {seeds} | {ratio:g} | {fp:.3f} | {anyp:.3f} |", flush=True)
            fp, anyp = null_rates(rows, 1, 10.0, metric, args.trials, args.resamples, supplied=True)
            print(f"| {metric} | {rows} | 1 + supplied spread (5 seeds) | 10 | {fp:.3f} | {anyp:.3f} |", flush=True)
    print("\n| metric | rows | seeds | effect (seed sds) | power (called best against every other row) |")
    print("|---|---:|---:|---:|---:|")
    for metric in ("psnr", "miou"):
        for seeds in (3, 5):
            for effect in (2, 4, 6):
                print(f"| {metric} | 5 | {seeds} | {effect} | "
                      f"{power(5, seeds, 10.0, effect, metric, args.trials, args.resamples):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
