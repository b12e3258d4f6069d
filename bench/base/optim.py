"""The optimisation step shared by the embedded networks' trainers (evaluator, feature network)."""
from __future__ import annotations

import math

import torch


def warmup_cosine(opt: torch.optim.Optimizer, iterations: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first 5 % of ``iterations``, then cosine decay to 0."""
    warm = max(iterations // 20, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min((i + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(i / iterations, 1.0)))))


class SmoothedStep:
    """One optimiser + scheduler step per call, with an exponentially smoothed loss for the log."""

    def __init__(self, opt: torch.optim.Optimizer, sched, name: str, iterations: int, every: int, log) -> None:
        self.opt, self.sched, self.name, self.iterations, self.every, self.log = opt, sched, name, iterations, every, log
        self.running: float | None = None

    def __call__(self, loss: torch.Tensor, it: int, elapsed: float) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        value = float(loss.detach())
        self.running = value if self.running is None else 0.95 * self.running + 0.05 * value
        if (it + 1) % self.every == 0 or it + 1 == self.iterations:
            self.log(f"{self.name} iter {it + 1}/{self.iterations} loss {self.running:.4f} ({elapsed:.0f} s)")
