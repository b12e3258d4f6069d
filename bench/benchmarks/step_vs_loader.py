"""Does the loader keep a training step fed? Crops/s one step consumes, crops/s the loader delivers, side by side.

    python -m bench.benchmarks.step_vs_loader --device cuda [--backbones ffdnet cbdnet sadnet] [--images 16]

Three measurements in one process, on one machine:

1. **Step**: per backbone and precision (fp32 without TF32, bf16 autocast + channels_last), the time of one training step of
   ``--batch`` crops of ``--crop`` px (forward, L1, backward, clipping, Adam) on batches already on the device;
   the variants are interleaved over ``--rounds`` so that a shared machine slows them alike.
2. **Loader**: crops/s that ``bench.train.batch_stream`` delivers from a decoded cache of ``--images``
   full-size images (a Cityscapes-layout tree written to ``--work``), with 0, 2 and 4 worker processes.
3. **Both**: ``bench.train.train`` itself, loader included, for ``--iterations`` on the first backbone in bf16
   (fp32 on a CPU without native bf16) with each number of loader workers: iterations/s.

Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_times(backbones: list[str], precisions: list[str], device: torch.device, batch: int, crop: int,
               steps: int, rounds: int) -> dict[tuple[str, str], float]:
    """Median seconds per training step for each (backbone, precision), variants interleaved over rounds."""
    from bench.config import TrainConfig
    from bench.train import make_state
    from losses import build_objective
    from models import build_backbone

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(batch, 3, crop, crop, generator=g)
    sigma = torch.full((batch,), 25 / 255)
    noisy = clean + sigma.view(-1, 1, 1, 1) * torch.randn(clean.shape, generator=g)
    setups = {}
    for name in backbones:
        for prec in precisions:
            layout = torch.channels_last if prec == "bf16" else torch.contiguous_format
            torch.manual_seed(0)
            model = build_backbone(name).to(device, memory_format=layout).train()
            cfg = TrainConfig(iterations=10**6, batch=batch, crop=crop, lr=1e-4, grad_clip=0.2, precision=prec)
            setups[name, prec] = (model, make_state(model, cfg), build_objective("l1").to(device), layout)
    batches = {lay: (clean.to(device, memory_format=lay), noisy.to(device, memory_format=lay), sigma.to(device))
               for lay in {s[3] for s in setups.values()}}
    times: dict[tuple[str, str], list[float]] = {k: [] for k in setups}

    def step(key):
        model, state, objective, layout = setups[key]
        c, n, s = batches[layout]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=key[1] == "bf16"):
            loss, _ = objective(model.restore(n, s), c, {"sigma": s, "labels": None, "extras": model.extras()})
        state.optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.2)
        state.optimizer.step()

    for key in setups:  # warm-up: kernels chosen, memory allocated
        for _ in range(3):
            step(key)
    _sync(device)
    for _ in range(rounds):
        for key in setups:
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step(key)
            _sync(device)
            times[key].append((time.perf_counter() - t0) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def loader_rates(images, labels, batch: int, crop: int, workers: list[int], batches: int) -> dict[int, float]:
    """Crops/s that ``batch_stream`` delivers with each number of workers (after its first batch)."""
    from bench.config import TrainConfig
    from bench.train import batch_stream

    cfg = TrainConfig(iterations=batches + 1, batch=batch, crop=crop)
    rates = {}
    for w in workers:
        stream = batch_stream(images, cfg, 0, 0, labels, workers=w)
        next(stream)  # workers started, first batch drawn
        t0 = time.perf_counter()
        n = sum(1 for _ in stream)
        rates[w] = n * batch / (time.perf_counter() - t0)
        del stream
    return rates


def train_rates(backbone: str, precision: str, images, device: torch.device, batch: int, crop: int,
                workers: list[int], iterations: int) -> dict[int, float]:
    """Iterations/s of ``bench.train.train`` (loader included) with each number of loader workers."""
    from bench.config import TrainConfig
    from bench.train import train
    from losses import build_objective
    from models import build_backbone

    rates = {}
    for w in workers:
        torch.manual_seed(0)
        model = build_backbone(backbone)
        cfg = TrainConfig(iterations=iterations, batch=batch, crop=crop, lr=1e-4, grad_clip=0.2,
                          checkpoint_every=10**6, precision=precision)
        with tempfile.TemporaryDirectory() as tmp:
            warm = TrainConfig(**{**cfg.__dict__, "iterations": 3})
            train(model, build_objective("l1"), images, warm, 0, Path(tmp) / "w.pth", device, log=lambda *_: None,
                  loader_workers=w)
            _sync(device)
            t0 = time.perf_counter()
            train(model, build_objective("l1"), images, cfg, 0, Path(tmp) / "t.pth", device, log=lambda *_: None,
                  loader_workers=w)
            _sync(device)
            rates[w] = iterations / (time.perf_counter() - t0)
    return rates


def main(argv: list[str] | None = None) -> None:
    from bench.base.data import SplitData
    from bench.benchmarks.streaming_memory import make_tree
    from bench.precision import resolve, strict_fp32
    from bench.streaming import decoded_split

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--backbones", nargs="+", default=["ffdnet", "cbdnet", "sadnet"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=16, help="full-size train images in the generated tree")
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--loader-batches", type=int, default=40)
    ap.add_argument("--iterations", type=int, default=40, help="iterations of each end-to-end training run")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of this process")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "d2sm-step-vs-loader")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    strict_fp32()  # fp32 rows without TF32, as cells train
    device = torch.device(args.device)
    out: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                 "batch": args.batch, "crop": args.crop}

    steps = step_times(args.backbones, args.precisions, device, args.batch, args.crop, args.steps, args.rounds)
    out["step_s"] = {f"{b} {p}": s for (b, p), s in steps.items()}
    print(json.dumps(out["step_s"]), flush=True)

    root = args.work / f"tree{args.images}"
    make_tree(root, args.images, args.height, args.width)
    t0 = time.perf_counter()
    images, labels = decoded_split(SplitData(root, "train", cache=False).samples, args.work / "decoded",
                                   log=lambda *_: None)
    out["cache_open_s"] = time.perf_counter() - t0
    loader = loader_rates(images, labels, args.batch, args.crop, args.workers, args.loader_batches)
    out["loader_crops_per_s"] = loader
    print(json.dumps({"loader_crops_per_s": loader}), flush=True)

    prec = "bf16" if "bf16" in args.precisions and resolve("auto", args.device) == "bf16" else "fp32"
    e2e = train_rates(args.backbones[0], prec, images, device, args.batch, args.crop, args.workers, args.iterations)
    out["train_it_per_s"] = {"backbone": args.backbones[0], "precision": prec, **e2e}
    print(json.dumps({"train_it_per_s": out["train_it_per_s"]}), flush=True)

    print(f"\n{out['device']}: batches of {args.batch} crops of {args.crop} px; "
          f"loader from {args.images} decoded {args.height}x{args.width} images")
    print("| backbone | precision | ms/step | crops/s consumed |")
    print("|---|---|---:|---:|")
    for (b, p), s in steps.items():
        print(f"| {b} | {p} | {s * 1e3:.1f} | {args.batch / s:.0f} |")
    print("\n| loader workers | crops/s delivered | train it/s (" + f"{args.backbones[0]} {prec}, loader included) |")
    print("|---:|---:|---:|")
    for w in args.workers:
        print(f"| {w} | {loader[w]:.0f} | {e2e[w]:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
