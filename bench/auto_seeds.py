"""``--seeds auto`` on a grid: the seed rule (``bench.seed_rule``) replayed over a results folder.

    plan, grid = grid_plan(grid, "synthcity", load_results(root, "synthcity"))
    grid.cells("synthcity")      # the cells the plan needs now (each row at its own seeds 0..n-1)
    plan.done, plan.alpha        # whether more seeds can be asked for; the letters' level

A row is a grid entry; its seeds are 0, 1, ..., n - 1. The comparison families are the report's: a backbone group
at one test sigma for each decision metric, the same bootstrap seeds (``bench.report.group_seed``), so that the
report of an auto run draws its letters from exactly the last look's tests.
"""
from __future__ import annotations

from bench.frame import image_frame
from bench.grids import Grid
from bench.metrics import METRICS
from bench.report import HEAD, REFERENCE, group_seed, row_samples
from bench.seed_rule import DECISION_METRICS, DEFAULT_MAX_SEEDS, Family, Plan, merge, plan
from bench.stats import ALPHA, N_BOOT


def grid_plan(grid: Grid, suite: str, results: list[dict], max_seeds: int = DEFAULT_MAX_SEEDS,
              metrics: tuple[str, ...] = DECISION_METRICS, n_boot: int = N_BOOT,
              alpha: float = ALPHA) -> tuple[Plan, Grid]:
    """(the plan, ``grid`` with each row at the seeds the plan needs now)."""
    done = {r["cell_id"]: r for r in results if r.get("kind") == "cell" and r.get("metrics")}
    base = grid.row_cells(suite)
    row_of = {(c.backbone, c.label()): i for i, c in enumerate(base)}

    def seeded(seeds: dict[int, int]) -> Grid:
        return grid.with_row_seeds({i: range(n) for i, n in seeds.items()})

    def families(seeds: dict[int, int]) -> list[Family] | None:
        """The comparison families of the rows in ``seeds``, each at its first seeds[row] seeds."""
        ids = [c.cell_hash() for c in seeded(seeds).cells(suite) if row_of[(c.backbone, c.label())] in seeds]
        if any(i not in done for i in ids):
            return None
        images = image_frame([done[i] for i in ids])
        out = []
        for (backbone, sigma), group in images.groupby(["backbone", "sigma"], sort=False):
            for metric in metrics:
                samples = row_samples(group, metric)
                if len(samples) < 2:
                    continue
                out.append(Family(f"{backbone} σ={sigma} {HEAD[metric]}", samples,
                                  {label: row_of[(backbone, label)] for label in samples},
                                  METRICS[metric].higher_is_better, REFERENCE if REFERENCE in samples else None,
                                  group_seed(backbone, sigma, metric)))
        return out

    groups: dict[str, list[int]] = {}  # backbone -> its rows: no comparison crosses backbones, so each group's
    for i, c in enumerate(base):      # looks go on whatever another group's cells are doing
        groups.setdefault(c.backbone, []).append(i)

    p = merge([plan(rows, families, max_seeds, alpha, n_boot) for rows in groups.values()])
    return p, seeded(p.seeds)


def describe(p: Plan, grid: Grid, suite: str) -> list[str]:
    """Markdown lines: per row, its seeds now and why it has them (for ``bench status``)."""
    lines = [f"`--seeds auto` (3 to {p.max_seeds} seeds per row; letters at {p.alpha:.4g} = 5 % over "
             f"{round(ALPHA / p.alpha)} looks): " + ("done" if p.done else "waiting for cells"),
             "", "| row | seeds | why |", "|---|---:|---|"]
    for i, c in enumerate(grid.row_cells(suite)):
        part, why = p.part(i), p.reasons(i)
        if p.decided(i):
            text = f"decided at look {len(part.history)}" if part.done else "decided so far"
        elif why and p.seeds[i] >= p.max_seeds and part.done:
            text = f"undecided at the maximum ({p.max_seeds} seeds): " + "; ".join(why[:3])
        elif why:
            text = "; ".join(why[:3]) + (f" (+{len(why) - 3} more)" if len(why) > 3 else "")
        else:
            text = "the first 3 seeds" + ("" if part.done else " (waiting for them)")
        lines.append(f"| {c.backbone} x {c.label()} | {p.seeds[i]} | {text} |")
    return lines
