"""What ``--seeds auto`` spends and decides against a fixed number of seeds, on finished results.

    python -m bench.benchmarks.seed_budget --grid objectives --results DIR [--max-seeds 5] [--fixed 5]

Both are read from one results folder that holds the cells of each (``bench run --seeds auto`` and ``bench run
--seeds 0 .. F-1`` into the same folder share the cells they have in common). For each: the cell-trainings it needs
and, per backbone group, sigma and decision metric (mIoU), the comparisons of every row with the group's best row
and with l1 that its table decides (Holm-adjusted, at the auto rule's look level for auto, at 5 % for fixed seeds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.auto_seeds import grid_plan
from bench.frame import image_frame
from bench.grids import get_grid
from bench.metrics import METRICS
from bench.report import REFERENCE, group_seed, row_samples
from bench.results import load_results
from bench.seed_rule import DECISION_METRICS, Family
from bench.seed_rule import comparisons as seed_comparisons
from bench.stats import ALPHA


def comparisons(results: list[dict], ids: set[str], alpha: float) -> tuple[int, int]:
    """(comparisons with the best row or l1 decided, all such comparisons) of the cells ``ids``."""
    images = image_frame([r for r in results if r.get("kind") == "cell" and r["cell_id"] in ids])
    decided = total = 0
    for (backbone, sigma), group in images.groupby(["backbone", "sigma"], sort=False):
        for metric in DECISION_METRICS:
            samples = row_samples(group, metric)
            fam = Family("", samples, {k: k for k in samples}, METRICS[metric].higher_is_better,
                         REFERENCE if REFERENCE in samples else None, group_seed(backbone, sigma, metric))
            c = seed_comparisons(fam, alpha)
            total += len(c.pairs)
            decided += len(c.pairs - c.open)
    return decided, total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", default="objectives")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--suite", default="synthcity")
    p.add_argument("--max-seeds", type=int, default=5)
    p.add_argument("--fixed", type=int, default=5)
    args = p.parse_args(argv)
    grid = get_grid(args.grid).with_precision(None)
    results = load_results(args.results, args.suite)
    done = {r["cell_id"] for r in results if r.get("kind") == "cell"}
    plan, seeded = grid_plan(grid, args.suite, results, args.max_seeds)
    auto_ids = {c.cell_hash() for c in seeded.cells(args.suite)}
    fixed_ids = {c.cell_hash() for c in grid.with_seeds(range(args.fixed)).cells(args.suite)}
    print(f"| rule | cell-trainings | finished | comparisons decided (mIoU, vs best and vs {REFERENCE}) | level |")
    print("|---|---:|---:|---:|---:|")
    for name, ids, alpha in ((f"--seeds auto --max-seeds {args.max_seeds}" + ("" if plan.done else " (pending)"),
                              auto_ids, plan.alpha), (f"--seeds 0..{args.fixed - 1}", fixed_ids, ALPHA)):
        if ids <= done:
            d, t = comparisons(results, ids, alpha)
            decided = f"{d} of {t}"
        else:
            decided = "–"
        print(f"| {name} | {len(ids)} | {len(ids & done)} | {decided} | {alpha:.4g} |")
    counts = sorted(plan.seeds.values())
    print(f"\nauto: {plan.looks_taken} looks, seeds per row {counts[0]}-{counts[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
