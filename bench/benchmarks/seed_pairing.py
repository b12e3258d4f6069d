"""Would pairing by seed shrink the variance of a difference? For every backbone, pair of rows, sigma and metric of a
results folder with shared seeds: the correlation of the two rows' per-seed values, and the variance of their
per-seed differences against the sum of their variances (what the report's unpaired test uses).

    python -m bench.benchmarks.seed_pairing --results DIR [--suite synthcity] [--reference l1]

A ratio below 1 means pairing would help (the unpaired test is then conservative); above 1, the unpaired test would
be anti-conservative. ``bench/stats.py`` cites its result.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from bench.frame import frame
    from bench.results import load_results

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--suite", default="synthcity")
    p.add_argument("--reference", default="l1", help="the row every other row is paired with")
    args = p.parse_args(argv)
    df = frame([r for r in load_results(args.results, args.suite) if r["kind"] == "cell"])
    print("| backbone | row | σ | metric | seeds | correlation | paired / unpaired variance |")
    print("|---|---|---:|---|---:|---:|---:|")
    for (backbone, sigma, metric), g in df.groupby(["backbone", "sigma", "metric"], sort=False):
        table = g.pivot_table(index="seed", columns="label", values="value").dropna()
        if args.reference not in table or len(table) < 3:
            continue
        ref = table[args.reference].to_numpy()
        for label in (c for c in table.columns if c != args.reference):
            other = table[label].to_numpy()
            ratio = np.var(other - ref, ddof=1) / (np.var(other, ddof=1) + np.var(ref, ddof=1))
            print(f"| {backbone} | {label} | {sigma} | {metric} | {len(ref)} | {np.corrcoef(other, ref)[0, 1]:+.2f} | "
                  f"{ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
