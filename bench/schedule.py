"""The order in which a process takes its pending cells: the longest first.

With several workers sharing a grid, the run ends when the last cell does; taking cells in grid order leaves the
longest ones (``sadnet_small``'s, 3-4x an ``ffdnet_small`` cell on a CPU) for the end, when one worker may run one
alone while the others have nothing left. Longest-processing-time-first bounds that tail (Graham 1969: within 4/3 of
the best makespan). A cell's length is estimated by timing its backbone's training step here (forward, L1,
backward, two steps after a warm-up, on the run's device and precision, at most 4 crops of 64 px, scaled to the
cell's batch and crop) times its iterations; the
objective's own cost is not in the estimate. The order changes no number: each cell is still a pure function of
its configuration.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

from bench.config import CellConfig

PROBE_BATCH, PROBE_CROP = 4, 64  # the timed step's size at most; its time is scaled to the cell's pixels per step


def step_seconds(cell: CellConfig, device: torch.device) -> float:
    """Seconds of one training step of ``cell``'s backbone (L1 loss) on ``device``: the faster of two timed steps."""
    import contextlib

    from bench.base.exact import exact_convolutions
    from models import build_backbone

    cfg = cell.train
    batch, crop = min(cfg.batch, PROBE_BATCH), min(cfg.crop, PROBE_CROP)
    layout = torch.channels_last if cfg.bf16 else torch.contiguous_format
    state = torch.get_rng_state()
    try:
        model = build_backbone(cell.backbone, **dict(cell.backbone_kwargs)).to(device, memory_format=layout).train()
        x = torch.rand(batch, 3, crop, crop, device=device).contiguous(memory_format=layout)
        sigma = torch.full((batch,), 0.1, device=device)
        best = float("inf")
        for i in range(3):
            t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16), \
                    exact_convolutions() if cfg.arithmetic == "exact" else contextlib.nullcontext():
                loss = (model.restore(x, sigma) - x).abs().mean()
            loss.float().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first step is a warm-up
                best = min(best, time.perf_counter() - t0)
        return best * (cfg.batch * cfg.crop ** 2) / (batch * crop ** 2)  # scaled to the cell's batch and crop
    finally:
        torch.set_rng_state(state)


def _setup(c: CellConfig) -> tuple:
    """What a training step's time depends on: the backbone and its arguments, batch, crop, precision, arithmetic."""
    return (c.backbone, c.backbone_kwargs, c.train.batch, c.train.crop, c.train.precision, c.train.arithmetic)


def longest_first(cells: list[CellConfig], device: torch.device, log: Callable[[str], None] = print
                  ) -> list[CellConfig]:
    """``cells`` ordered by estimated length, longest first (ties keep grid order); one timing per backbone setup."""
    if len(cells) < 2 or len({_setup(c) for c in cells}) < 2:
        return list(cells)
    timed: dict[tuple, float] = {}
    for c in cells:
        if _setup(c) not in timed:
            timed[_setup(c)] = step_seconds(c, device)
    cost = {c: timed[_setup(c)] * c.train.iterations for c in cells}
    ordered = sorted(cells, key=lambda c: -cost[c])  # stable: equal estimates keep the grid's order
    if ordered != list(cells):
        log("longest cells first (estimated from one training step of each backbone): "
            + ", ".join(f"{k[0]} {1e3 * v:.0f} ms/step" for k, v in sorted(timed.items(), key=lambda kv: -kv[1])))
    return ordered
