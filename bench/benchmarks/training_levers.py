"""What each training lever does to a cell's outcome: its seed spread, its thread spread, its gain over the noisy
input, its cost.

    python -m bench.benchmarks.training_levers --backbone ffdnet_small --seeds 0 1 2 \\
        --variant grid --variant 'cosine:schedule=cosine,warmup=0.05' --jobs 2

A variant is ``name`` (a grid's training settings, ``grid`` = the synthcity grids') or ``name:key=value,...``
(``TrainConfig`` fields over the grid's settings; ``threads=N`` runs that variant's children with N threads). Each
(variant, seed) trains the ``l1`` objective in a fresh child process (one thread unless told; ``--jobs``
children at a time, interleaved over variants so that a busy machine slows all variants alike) and is scored on
the whole synthcity val split with the embedded evaluator. Prints, per variant and test sigma, the mean and
standard deviation over seeds of PSNR and mIoU, the largest distance of a seed from the median in standard
deviations, and the PSNR gain over the unrestored noisy input.

``--perturb EPS`` also trains every (variant, seed) from weights multiplied by (1 + EPS x N(0, 1)) (a fixed draw):
a rounding-sized difference, as another CPU, thread count or GPU makes, and the table then gives the root mean
square of the differences it causes (the chaos a regression tolerance must absorb: 3x that RMS against the bounds
PSNR 0.15 dB, SSIM 0.005, mIoU 0.015). ``--device cuda`` trains on a GPU (fp32 without TF32).
Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import statistics
import time
from queue import Empty

from bench.config import TrainConfig


def parse_variant(text: str, base: TrainConfig) -> tuple[str, TrainConfig, int, dict]:
    """``name[:key=value,...]`` -> (name, the grid's settings with those fields replaced, threads, backbone
    arguments: ``backbone.NAME=value`` items, values read as JSON)."""
    name, _, spec = text.partition(":")
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    changes: dict[str, object] = {}
    threads, backbone_kwargs = 1, {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key == "threads":
            threads = int(value)
            continue
        if key.startswith("backbone."):
            backbone_kwargs[key.removeprefix("backbone.")] = json.loads(value)
            continue
        if key not in fields:
            raise SystemExit(f"--variant {text}: unknown field {key!r}; fields: {', '.join(fields)}")
        current = getattr(base, key)
        if isinstance(current, tuple):
            changes[key] = tuple(float(v) for v in value.split("/"))
        else:
            changes[key] = type(current)(value)
    from bench.precision import resolve

    cfg = dataclasses.replace(base, **changes)
    exact_auto = cfg.arithmetic == "exact" and cfg.precision == "auto"  # exact arithmetic is fp32
    return name, dataclasses.replace(cfg, precision="fp32" if exact_auto else resolve(cfg.precision)), threads, \
        backbone_kwargs


def _train_and_score(key: tuple[str, int, float], backbone: str, backbone_kwargs: dict, cfg: TrainConfig, seed: int,
                     threads: int, sigmas: tuple[float, ...], out, device: str = "cpu") -> None:
    import tempfile
    from pathlib import Path

    import torch

    from bench.evaluate import evaluate
    from bench.instrument import perturb_weights
    from bench.runner import Context
    from bench.suites import SuiteOptions, SynthcitySuite
    from bench.train import build_for_training, train
    from losses import build_objective

    torch.set_num_threads(threads)
    ctx = Context(SynthcitySuite(SuiteOptions()), device, log=lambda *_: None)
    model = perturb_weights(build_for_training(backbone, backbone_kwargs, cfg, seed), key[2])  # key[2]: --perturb or 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(model, build_objective("l1"), ctx.train_images, cfg, seed, Path(tmp) / "train.pth",
                        ctx.device, log=lambda *_: None)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    metrics = evaluate(model.restore, ctx.val, sigmas, 0, ctx.segmenter, ctx.device)
    out.put((key, {"seconds": seconds, "final_l1": summary["final_terms"].get("l1"),
             **{f"{k}|{m}": v[m] for k, v in metrics.items() for m in ("psnr", "ssim", "miou")}}))


def _noisy_psnr(sigmas: tuple[float, ...]) -> dict[str, float]:
    import torch

    from bench.base.data import SplitData
    from bench.base.noise import to_unit
    from bench.evaluate import restored_batches
    from bench.metrics import psnr
    from bench.suites import SuiteOptions, SynthcitySuite

    val = SplitData(SynthcitySuite(SuiteOptions()).data_root(log=lambda *_: None), "val")
    out = {}
    for s in sigmas:
        vals = [psnr(to_unit(b.out_u8), b.clean) for b in restored_batches(lambda x, _: x, val, s, 0, torch.device("cpu"))]
        out[f"{s:g}"] = float(torch.cat(vals).mean())
    return out


def summarize(rows: list[dict], sigma: str, metric: str) -> dict[str, float]:
    """Mean, population-free sample std and the largest |value - median| / std over seeds."""
    vals = [r[f"{sigma}|{metric}"] for r in rows]
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    med = statistics.median(vals)
    return {"mean": statistics.fmean(vals), "std": sd, "max_dev": max(abs(v - med) for v in vals) / sd if sd else 0.0,
            "min": min(vals), "max": max(vals)}


def rounding_rms(rows: list[dict], perturbed: list[dict], sigma: str) -> dict[str, float]:
    """Root mean square over seeds of the perturbed run's metric minus the unperturbed run's, per metric."""
    by_seed = {r["seed"]: r for r in perturbed}
    pairs = [(r, by_seed[r["seed"]]) for r in rows if r["seed"] in by_seed]
    return {m: math.sqrt(statistics.fmean((b[f"{sigma}|{m}"] - a[f"{sigma}|{m}"]) ** 2 for a, b in pairs))
            for m in ("psnr", "ssim", "miou")} if pairs else {m: float("nan") for m in ("psnr", "ssim", "miou")}


def main(argv: list[str] | None = None) -> None:
    from bench.grids import SYNTHCITY_TRAIN

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="ffdnet_small")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variant", action="append", default=[], help="name[:key=value,...] (repeatable)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[25.0, 50.0])
    p.add_argument("--jobs", type=int, default=1, help="child processes at a time")
    p.add_argument("--device", default="cpu")
    p.add_argument("--perturb", type=float, default=0.0, metavar="EPS",
                   help="also train every run from weights perturbed by EPS (relative); report the RMS difference")
    p.add_argument("--json", help="also write every run's numbers to this file")
    args = p.parse_args(argv)
    variants = [parse_variant(v, SYNTHCITY_TRAIN) for v in (args.variant or ["grid"])]
    sigmas = tuple(args.sigmas)
    perturbs = [0.0, args.perturb] if args.perturb else [0.0]
    runs = [(v, s, e) for s in args.seeds for e in perturbs for v in variants]  # interleaved: the same load for all
    ctx = mp.get_context("spawn")
    results: dict[str, list[dict]] = {name: [] for name, *_ in variants}
    perturbed: dict[str, list[dict]] = {name: [] for name, *_ in variants}
    queue = ctx.Queue()
    pending, active = list(runs), []
    while pending or active:
        while pending and len(active) < args.jobs:
            (name, cfg, threads, bb_kwargs), seed, eps = pending.pop(0)
            proc = ctx.Process(target=_train_and_score, args=((name, seed, eps), args.backbone, bb_kwargs, cfg, seed,
                                                              threads, sigmas, queue, args.device))
            proc.start()
            active.append((proc, name, seed, eps))
        try:  # whichever child finishes first
            (name, seed, eps), row = queue.get(timeout=5)
        except Empty:
            for proc, name, seed, _eps in active:
                if proc.exitcode not in (None, 0):
                    raise SystemExit(f"variant {name} seed {seed} failed (exit {proc.exitcode})") from None
            continue
        for entry in [a for a in active if a[1:] == (name, seed, eps)]:
            entry[0].join()
            active.remove(entry)
        (perturbed if eps else results)[name].append({"seed": seed, **row})
        print(f"{name} seed {seed}{' perturbed' if eps else ''}: "
              + " ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float)), flush=True)
    noisy = _noisy_psnr(sigmas)
    print(f"\n{args.backbone}, l1, seeds {args.seeds}; noisy input PSNR: "
          + ", ".join(f"sigma {k} {v:.2f} dB" for k, v in noisy.items()))
    print("| variant | σ | PSNR mean ± std | gain over noisy | PSNR max dev/std | mIoU mean ± std | mIoU min-max "
          "| mIoU max dev/std | s/run |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        for s in (f"{x:g}" for x in sigmas):
            ps, mi = summarize(rows, s, "psnr"), summarize(rows, s, "miou")
            print(f"| {name} | {s} | {ps['mean']:.2f} ± {ps['std']:.2f} | {ps['mean'] - noisy[s]:+.2f} | "
                  f"{ps['max_dev']:.1f} | {mi['mean']:.4f} ± {mi['std']:.4f} | {mi['min']:.3f}-{mi['max']:.3f} | "
                  f"{mi['max_dev']:.1f} | {statistics.fmean(r['seconds'] for r in rows):.0f} |")
    if args.perturb:
        print(f"\nRounding spread: RMS over seeds of (perturbed by {args.perturb:g} - unperturbed), and 3x it")
        print("| variant | σ | PSNR RMS | SSIM RMS | mIoU RMS | 3x within 0.15 dB / 0.005 / 0.015 |")
        print("|---|---:|---:|---:|---:|---|")
        for name, rows in results.items():
            for s in (f"{x:g}" for x in sigmas):
                rms = rounding_rms(rows, perturbed[name], s)
                ok = all(3 * rms[m] <= b for m, b in (("psnr", 0.15), ("ssim", 0.005), ("miou", 0.015)))
                print(f"| {name} | {s} | {rms['psnr']:.3f} | {rms['ssim']:.4f} | {rms['miou']:.4f} | "
                      f"{'yes' if ok else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backbone": args.backbone, "noisy_psnr": noisy, "runs": results, "perturbed": perturbed,
                       "perturb": args.perturb, "device": args.device}, f, indent=1)


if __name__ == "__main__":
    main()
