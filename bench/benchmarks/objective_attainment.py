"""Does each trained cell reach its own objective? The terms of the objectives, measured on what every
trained model of a results folder restores.

    python -m bench.benchmarks.objective_attainment --results results/runs --backbone cbdnet_small --sigma 50

For every finished cell of ``backbone`` (its weights from the cell's ``train.pth``), restores the
synthcity val images at ``sigma`` with the evaluation noise, quantised as for scoring (``--raw``: the
network's float output, unclipped as in training), cuts them into
64x64 tiles (the training crop) and measures each term at weight 1 against the clean tiles: L1, the
perceptual distance, D2SM over sets of 64 tiles (one full queue), D2SM Internal over the patches of
each tile. A cell trained on a term should have the lowest value of that term in its column; if it
does, the optimiser reached what the objective asks and its score says what that buys downstream.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

TERMS = {"perceptual": {"weight": 1.0}, "d2sm": {"weight": 1.0},
         "d2sm_internal": {"weight": 1.0}}
TILE, SET = 64, 64


def tiles(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B * H//64 * W//64, 3, 64, 64)."""
    b, c, h, w = x.shape
    x = x[..., : h // TILE * TILE, : w // TILE * TILE]
    return F.unfold(x, TILE, stride=TILE).transpose(1, 2).reshape(-1, c, TILE, TILE)


def restored_tiles(result: dict, ctx, sigma: float, raw: bool = False) -> torch.Tensor:
    """The cell's restorations of the val images at ``sigma`` (quantised, or its float output if ``raw``), as tiles."""
    from bench.base.noise import to_unit
    from bench.cell_state import CHECKPOINT_FILE
    from bench.evaluate import restored_batches
    from bench.trained import load_trained_denoiser

    model = load_trained_denoiser(result["config"], Path(result["_path"]).with_name(CHECKPOINT_FILE))
    batches = restored_batches(model.restore, ctx.val, sigma, result["config"]["seed"], ctx.device)
    return tiles(torch.cat([b.restored if raw else to_unit(b.out_u8) for b in batches]))


def main(argv: list[str] | None = None) -> None:
    from bench.evaluate import restored_batches
    from bench.results import load_results
    from bench.runner import Context
    from bench.suites import SuiteOptions, SynthcitySuite
    from losses import build_objective

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("results/runs"))
    p.add_argument("--backbone", default="cbdnet_small")
    p.add_argument("--sigma", type=float, default=50.0)
    p.add_argument("--raw", action="store_true", help="measure the network's float output, not the quantised image")
    p.add_argument("--objectives", nargs="*", help="only the cells trained with these objectives")
    args = p.parse_args(argv)

    ctx = Context(SynthcitySuite(SuiteOptions()), "cpu", log=lambda *_: None)
    clean = tiles(torch.cat([b.clean for b in restored_batches(None, ctx.val, 0.0, 0, ctx.device)]))
    n_sets = len(clean) // SET
    terms = {name: build_objective(name, ctx.resources, l1_weight=0.0, **kw).eval() for name, kw in TERMS.items()}
    results = [r for r in load_results(args.results, "synthcity") if r["config"].get("backbone") == args.backbone]
    if not results:
        raise SystemExit(f"no finished {args.backbone} cell under {args.results}/synthcity")
    print(f"{args.backbone}, sigma {args.sigma:g}: {len(clean)} val tiles of {TILE}x{TILE}, "
          f"D2SM over {n_sets} sets of {SET}; each term at weight 1 (lower is closer to clean)\n")
    print("| trained with | L1 | " + " | ".join(TERMS) + " |\n|---|---:|" + "---:|" * len(TERMS))
    for r in results:
        if args.objectives and r["config"]["objective"] not in args.objectives:
            continue
        rest = restored_tiles(r, ctx, args.sigma, args.raw)
        row = [float((rest - clean).abs().mean())]
        with torch.no_grad():
            for obj in terms.values():
                vals = [float(obj(rest[k * SET:(k + 1) * SET], clean[k * SET:(k + 1) * SET])[0])
                        for k in range(n_sets)]
                row.append(sum(vals) / len(vals))
        print(f"| {r['config']['objective']} (seed {r['config']['seed']}) | " + " | ".join(f"{v:.5g}" for v in row) + " |")


if __name__ == "__main__":
    main()
