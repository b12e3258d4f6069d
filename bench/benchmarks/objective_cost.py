"""Training-step cost of every objective relative to ``l1`` (time and peak memory), and D2SM's queue sizes.

    python -m bench.benchmarks.objective_cost [--steps 20] [--backbone ffdnet_small] [--device cpu] [--precision bf16]

Each configuration runs in a fresh child process on the embedded suite's real loss networks and
the grid's training batch (batch 8, 64 px crops); time is the median step after warm-up, memory the
peak resident set (CPU, Linux) or peak allocated (CUDA) above the level after setup: the
working memory of a training step. Not a test: numbers
depend on the machine; the ratios are what to compare.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time


def configs(grids: list[str]) -> list[tuple[str, dict]]:
    """The (objective, parameters) rows of these grids, in order, each configuration once (l1 first: the
    reference; ``d2sm`` and ``d2sm`` at its default queue size are one)."""
    from bench.grids import get_grid
    from losses.registry import objective_params

    rows = [("l1", {})] + [(e.objective, dict(e.objective_params)) for g in grids for e in get_grid(g).entries]
    seen, out = [], []
    for name, kw in rows:
        key = (name, objective_params(name, **kw))
        if key not in seen:
            seen.append(key)
            out.append((name, kw))
    return out


def _status_kb(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (Linux clear_refs 5); returns the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kb("VmRSS") * 1024


def _measure(name: str, kwargs: dict, backbone: str, steps: int, device: str, threads: int, bf16: bool, out) -> None:
    import torch

    from bench.grids import SYNTHCITY_TRAIN
    from bench.runner import Context
    from bench.suites import SuiteOptions, SynthcitySuite
    from bench.train import draw_batch
    from losses import build_objective
    from models import build_backbone

    torch.set_num_threads(threads)
    ctx = Context(SynthcitySuite(SuiteOptions()), device, log=lambda *_: None)
    torch.manual_seed(0)
    layout = torch.channels_last if bf16 else torch.contiguous_format
    model = build_backbone(backbone).to(device, memory_format=layout).train()
    objective = build_objective(name, ctx.resources, **kwargs).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    cfg = SYNTHCITY_TRAIN
    batches = [draw_batch(ctx.train_images, cfg, 0, it, ctx.train_labels) for it in range(steps + 3)]
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for i, (clean, noisy, sigma, labels) in enumerate(batches):
        if i == 0 and not cuda:
            base = _reset_peak_rss()  # after setup: data, loss networks and model in memory
        t0 = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            restored = model.restore(noisy.to(device, memory_format=layout), sigma.to(device))
            loss, _ = objective(restored, clean.to(device, memory_format=layout), {"sigma": sigma, "labels": labels})
        loss = loss.float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() - base if cuda else _status_kb("VmHWM") * 1024 - base
    out.put({"seconds": statistics.median(times), "peak_bytes": peak, "base_bytes": base})


def measure(name: str, kwargs: dict, backbone: str, steps: int, device: str, threads: int, bf16: bool = False) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_measure, args=(name, kwargs, backbone, steps, device, threads, bf16, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", action="append", help="measure the objectives of these grids (repeatable; default: "
                    "objectives, i.e. every registered one, and queue-sizes)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--backbone", default="ffdnet_small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="threads per child (default 1: ratios survive a busy machine)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over all configurations, interleaved; median kept")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: autocast + channels_last")
    args = ap.parse_args(argv)
    rows = configs(args.grid or ["objectives", "queue-sizes"])
    labels = [name + "".join(f" {k}={v}" for k, v in kw.items()) for name, kw in rows]
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    for _ in range(args.rounds):  # interleaved: load from elsewhere falls on every configuration alike
        for label, (name, kw) in zip(labels, rows, strict=True):
            r = measure(name, kw, args.backbone, args.steps, args.device, args.threads, args.precision == "bf16")
            runs[label].append(r)
            print(f"measured {label}: {r['seconds'] * 1000:.1f} ms/step", flush=True)
    rows = [(label, {k: statistics.median(r[k] for r in runs[label]) for k in ("seconds", "peak_bytes")})
            for label in labels]
    ref = rows[0][1]
    mem = "step memory"
    print(f"\n{args.backbone}, batch 8 x 64 px crops, {args.device}, {args.precision}, {args.threads} threads, median of "
          f"{args.steps} steps, median of {args.rounds} interleaved rounds\n")
    print(f"| objective | ms/step | x l1 | {mem} (MB) | x l1 |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['seconds'] * 1000:.1f} | {r['seconds'] / ref['seconds']:.2f} | "
              f"{r['peak_bytes'] / 2**20:.0f} | {r['peak_bytes'] / ref['peak_bytes']:.2f} |")


if __name__ == "__main__":
    main()
