"""Held-out calibration through the command line: result files of the real schema and folder names, their values
rewritten with a training-seed effect and a known truth, ranked by ``bench report --format csv``.

    python -m bench.benchmarks.heldout [--template RESULT.json] [--trials 200] [--seeds 3]

A template cell's ``result.json`` (default: the committed ``tests/fixtures/results``) gives the schema, the val
image ids and the per-image PSNR, SSIM and class areas. Each trial writes every cell of the ``paper-table2`` grid
(5 rows) at seeds 0..S-1 with the real writer (``bench.results.write_result``) under the folder names the grid
gives, each value = the template's + a per-(row, seed) effect (the seed spread) + per-image noise (+ the row's
shift), then runs ``python -m bench report --grid paper-table2 --seeds ... --format csv`` in-process and reads
which rows its letters separate. Null trials (no shift): any separation is a false positive. Power trials:
d2sm_internal shifted by ``effect`` seed sds; found, per sigma, when its mIoU is called better than every other
row.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.paths import REPO_ROOT
from bench.results import CellResult, read_result, write_result

TEMPLATE = next((REPO_ROOT / "tests" / "fixtures" / "results" / "synthcity").glob("*/result.json"), None)
GRID, SUITE, SHIFTED = "paper-table2", "synthcity", "d2sm_internal"
ROWS = {"l1", "ikld", "jsd", "gan", "d2sm_internal"}  # the grid's objectives
SEED_SD = {"psnr": 0.06, "miou": 0.007}  # the smallest measured seed spreads (docs/stability.md): ~3x the image SE
IMAGE_SD = {"psnr": 0.3, "iou": 0.02}


def _metrics(template: dict, rng: np.random.Generator, effect: dict[str, float]) -> dict:
    """The template's metrics with ``effect`` ({"psnr": dB, "miou": fraction}) and per-image noise added."""
    out = {}
    for sigma, m in template["metrics"].items():
        per = m["per_image"]
        n = len(per["ids"])
        psnr = np.asarray(per["psnr"]) + effect["psnr"] + rng.normal(0, IMAGE_SD["psnr"], n)
        ssim = np.clip(np.asarray(per["ssim"]) + rng.normal(0, 0.002, n), 0, 1)
        union = np.asarray(per["union"], dtype=np.int64)
        ratio = np.asarray(per["intersect"]) / np.maximum(union, 1)
        ratio = np.clip(ratio + effect["miou"] + rng.normal(0, IMAGE_SD["iou"], ratio.shape), 0, 1)
        inter = np.minimum(np.round(ratio * union).astype(np.int64), union)
        present = union.sum(0) > 0
        miou = float((inter.sum(0)[present] / union.sum(0)[present]).mean())
        out[sigma] = {**{k: v for k, v in m.items() if k not in ("per_image", "areas", "per_class_iou")},
                      "psnr": float(psnr.mean()), "ssim": float(ssim.mean()), "miou": miou,
                      "per_image": {"ids": per["ids"], "psnr": psnr.tolist(), "ssim": ssim.tolist(),
                                    "intersect": inter.tolist(), "union": union.tolist()}}
    return out


def write_trial(root: Path, template: dict, seeds: int, rng: np.random.Generator,
                shift: dict[str, dict[str, float]]) -> None:
    """Every cell of the grid at seeds 0..seeds-1 under ``root``, values rewritten (``shift``: per objective)."""
    from bench.grids import get_grid

    fields = {f.name for f in dataclasses.fields(CellResult)}
    for cell in get_grid(GRID).with_seeds(range(seeds)).cells(SUITE):
        effect = {k: rng.normal(0, SEED_SD[k]) + shift.get(cell.objective, {}).get(k, 0.0) for k in SEED_SD}
        data = {**{k: v for k, v in template.items() if k in fields}, "cell_id": cell.cell_hash(),
                "slug": cell.slug(), "label": cell.label(), "config": cell.to_dict(), "seed": cell.seed,
                "objective_params": dict(cell.objective_kwargs), "metrics": _metrics(template, rng, effect)}
        write_result(root / SUITE / cell.dirname(), CellResult(**data))


def report_csv(root: Path, seeds: int) -> pd.DataFrame:
    """``bench report --grid paper-table2 --seeds 0..S-1 --format csv`` on ``root``, run in this process."""
    from bench.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["report", "--grid", GRID, "--seeds", *map(str, range(seeds)), "--results", str(root),
                     "--format", "csv", "--resamples", "500"])
    if code != 0:
        raise RuntimeError(f"bench report exited {code}")
    return pd.read_csv(io.StringIO(buf.getvalue()), dtype={"sigma": str, "letters": str})


def separated(df: pd.DataFrame) -> dict[tuple[str, str], set[frozenset]]:
    """{(sigma, metric): the pairs of ranked rows that share no letter}."""
    out = {}
    cells = df[df["kind"] == "cell"]
    for (sigma, metric), g in cells.groupby(["sigma", "metric"]):
        letters = {r["label"]: str(r["letters"]) for _, r in g.iterrows() if isinstance(r["letters"], str)}
        out[(sigma, metric)] = {frozenset(p) for p in itertools.combinations(letters, 2)
                                if not set(letters[p[0]]) & set(letters[p[1]])}
    return out


def run(trials: int, seeds: int, effect: float = 0.0, template: Path | None = None, seed: int = 0) -> dict:
    """Null (``effect`` 0) or power trials: rates per (sigma, metric) family, over all families, and power."""
    tpl = read_result(Path(template or TEMPLATE))  # upgraded to the current schema
    rng = np.random.default_rng(seed)
    any_false, families, hits, tested = 0, 0, 0, 0
    for _ in range(trials):
        with tempfile.TemporaryDirectory() as tmp:
            shift = {SHIFTED: {"miou": effect * SEED_SD["miou"], "psnr": effect * SEED_SD["psnr"]}} if effect else {}
            write_trial(Path(tmp), tpl, seeds, rng, shift)
            calls = separated(report_csv(Path(tmp), seeds))
        for pairs in calls.values():
            families += 1
            wrong = pairs if not effect else {p for p in pairs if SHIFTED not in p}
            any_false += bool(wrong)
        for (_, metric), pairs in calls.items():  # power: the shifted row's mIoU called better than every row
            if effect and metric == "miou":
                tested += 1
                hits += all(frozenset({SHIFTED, o}) in pairs for o in ROWS - {SHIFTED})
    return {"families": families, "any_pair_false_positive_rate": any_false / max(families, 1),
            "power": hits / tested if effect else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--template", type=Path, default=TEMPLATE)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--effect", type=float, nargs="+", default=[0.0, 4.0])
    args = p.parse_args(argv)
    for effect in args.effect:
        print(json.dumps({"seeds": args.seeds, "effect_seed_sds": effect, "trials": args.trials,
                          **run(args.trials, args.seeds, effect, args.template)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
