"""A results folder of schema-2 files (as the bench wrote them before metrics became a registry): the committed
template cell's values rewritten per row and seed of the paper-table2 grid, written as raw JSON (not through
today's writer), so that a test can check that old folders still report byte for byte as they did."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.benchmarks.heldout import SEED_SD, TEMPLATE, _metrics
from bench.grids import get_grid

GRID, SUITE, SEEDS = "paper-table2", "synthcity", (0, 1, 2)
SHIFT = {"d2sm_internal": {"psnr": 0.3, "miou": 0.02}}


def write_v2_folder(root: Path) -> Path:
    template = json.loads(Path(TEMPLATE).read_text())
    assert template["schema"] == 2
    rng = np.random.default_rng(20261204)
    for cell in get_grid(GRID).with_seeds(SEEDS).cells(SUITE):
        effect = {k: rng.normal(0, SEED_SD[k]) + SHIFT.get(cell.objective, {}).get(k, 0.0) for k in SEED_SD}
        data = {**template, "cell_id": cell.cell_hash(), "slug": cell.slug(), "label": cell.label(),
                "config": cell.to_dict(), "seed": cell.seed, "objective_params": dict(cell.objective_kwargs),
                "metrics": _metrics(template, rng, effect)}
        folder = Path(root) / SUITE / cell.dirname()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps(data))
    return Path(root)
