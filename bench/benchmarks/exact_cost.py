"""What exact arithmetic (``bench.base.exact``) costs: a training step (L1, Adam, clipping) in native fp32 and in exact
arithmetic, side by side, interleaved, one thread.

    python -m bench.benchmarks.exact_cost --backbones ffdnet_tiny ffdnet_small cbdnet_small --rounds 5

Each round times ``--steps`` steps of every (backbone, arithmetic) in turn, so a busy machine slows both alike; the
table gives the median ms/step and the ratio exact / native. Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import statistics
import time


def _setup(backbone: str, arithmetic: str, batch: int, crop: int):
    import torch

    from bench.base.exact import clip_grad_norm_exact, exact_convolutions
    from bench.config import TrainConfig
    from bench.train import build_for_training, make_state

    cfg = TrainConfig(batch=batch, crop=crop, lr=1e-3, grad_clip=0.2, arithmetic=arithmetic)
    model = build_for_training(backbone, {}, cfg, 0).train()
    state = make_state(model, cfg)
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(batch, 3, crop, crop, generator=g)
    sigma = torch.full((batch,), 25 / 255)
    noisy = clean + torch.randn(clean.shape, generator=g) * sigma.view(-1, 1, 1, 1)
    exact = arithmetic == "exact"
    clip = clip_grad_norm_exact if exact else torch.nn.utils.clip_grad_norm_

    def step() -> None:
        import contextlib

        with exact_convolutions() if exact else contextlib.nullcontext():
            loss = (model.restore(noisy, sigma) - clean).abs().mean()
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip(model.parameters(), cfg.grad_clip)
        state.optimizer.step()

    return step


def main(argv: list[str] | None = None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbones", nargs="+", default=["ffdnet_tiny", "ffdnet_small", "cbdnet_small"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = {(b, a): _setup(b, a, args.batch, args.crop) for b in args.backbones for a in ("native", "exact")}
    for fn in steps.values():
        fn()  # warm-up
    times: dict[tuple[str, str], list[float]] = {k: [] for k in steps}
    for _ in range(args.rounds):
        for key, fn in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[key].append((time.perf_counter() - t0) / args.steps * 1000)
    print(f"batch {args.batch} x {args.crop}², {args.threads} thread(s), median of {args.rounds} interleaved rounds")
    print("| backbone | native fp32 ms/step | exact ms/step | exact / native |\n|---|---:|---:|---:|")
    for b in args.backbones:
        n, e = statistics.median(times[(b, "native")]), statistics.median(times[(b, "exact")])
        print(f"| {b} | {n:.1f} | {e:.1f} | {e / n:.2f}x |")


if __name__ == "__main__":
    main()
