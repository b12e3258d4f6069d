"""How fast training amplifies a rounding-sized difference: two runs of one cell, the second from weights scaled by
(1 + EPS N(0, 1)), on the same batches, and the distance between the two networks as training goes.

    python -m bench.benchmarks.twin_runs --backbone ffdnet_small --grid smoke --every 100
    python -m bench.benchmarks.twin_runs --backbone ffdnet_tiny --variant 'x:arithmetic=exact' --eps 0

Every ``--every`` iterations both networks restore the first 16 synthcity val images at sigma 25; the table gives the
root mean square of the difference of their outputs (on [0, 1]; its mean over each image and channel, the
brightness part, beside it), and at the end both runs' PSNR/SSIM/mIoU on the whole val split and their difference.
Another CPU or thread count perturbs a run by about that much at every step, so the end differences are what a
regression check on a trained cell must tolerate unless training is machine-independent (``bench.base.exact``). With
``--eps 0`` the two runs are identical in any arithmetic (a check of determinism). Runs are one thread each, side by
side. Variants as ``bench.benchmarks.training_levers`` (``name:key=value,...``, ``backbone.NAME=value``).
Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp


def _run(backbone: str, variant: str, grid: str, seed: int, eps: float, every: int, out) -> None:
    import tempfile
    from pathlib import Path

    import torch

    from bench.benchmarks.training_levers import parse_variant
    from bench.evaluate import evaluate, restored_batches
    from bench.grids import get_grid
    from bench.instrument import perturb_weights
    from bench.runner import Context
    from bench.suites import SuiteOptions, SynthcitySuite
    from bench.train import build_for_training, train
    from losses import build_objective

    torch.set_num_threads(1)
    _, cfg, _, backbone_kwargs = parse_variant(variant, get_grid(grid).train["synthcity"])
    ctx = Context(SynthcitySuite(SuiteOptions()), "cpu", log=lambda *_: None)
    model = perturb_weights(build_for_training(backbone, backbone_kwargs, cfg, seed), eps)
    outputs: list[torch.Tensor] = []

    def snapshot(net) -> dict:
        batches = restored_batches(net.restore, ctx.val_curve_images, 25.0, 0, ctx.device, amp=cfg.bf16)
        outputs.append(torch.cat([b.restored for b in batches]))
        return {}

    with tempfile.TemporaryDirectory() as tmp:
        train(model, build_objective("l1"), ctx.train_images, cfg, seed, Path(tmp) / "t.pth", ctx.device,
              log=lambda *_: None, validate=snapshot, val_every=every)
    metrics = evaluate(model.restore, ctx.val, (25.0, 50.0), 0, ctx.segmenter, ctx.device, amp=cfg.bf16)
    out.put((eps != 0.0, torch.stack(outputs).numpy(),  # by value: the child may be gone when it is read
             {f"{s}|{m}": v[m] for s, v in metrics.items() for m in ("psnr", "ssim", "miou")}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="ffdnet_small")
    p.add_argument("--grid", default="smoke", help="the grid whose synthcity training settings the runs use")
    p.add_argument("--variant", default="grid", help="name[:key=value,...] over the grid's settings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=float, default=1e-6, help="relative perturbation of the second run's weights")
    p.add_argument("--every", type=int, default=100, help="iterations between two distance measurements")
    args = p.parse_args(argv)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_run, args=(args.backbone, args.variant, args.grid, args.seed, eps, args.every, queue))
             for eps in (0.0, args.eps)]
    for proc in procs:
        proc.start()
    got = dict((perturbed, (outs, metrics)) for perturbed, outs, metrics in (queue.get() for _ in procs))
    for proc in procs:
        proc.join()
    import torch

    (a, ma), (b, mb) = got[False], got[True]
    a, b = torch.from_numpy(a), torch.from_numpy(b)
    print(f"{args.backbone}, {args.variant} of grid {args.grid}, seed {args.seed}, second run perturbed by {args.eps:g}")
    print("| iteration | RMS output difference | of which brightness |\n|---:|---:|---:|")
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        d = x - y
        print(f"| {(i + 1) * args.every} | {float(d.pow(2).mean().sqrt()):.2e} | "
              f"{float(d.mean((2, 3)).pow(2).mean().sqrt()):.2e} |")
    print("\n| metric | run 1 | run 2 | difference |\n|---|---:|---:|---:|")
    for k in ma:
        print(f"| {k} | {ma[k]:.4f} | {mb[k]:.4f} | {mb[k] - ma[k]:+.4f} |")
    same = all(math.isclose(ma[k], mb[k], rel_tol=0, abs_tol=0) for k in ma)
    print(f"\nthe two runs' numbers are {'identical' if same else 'different'}")


if __name__ == "__main__":
    main()
