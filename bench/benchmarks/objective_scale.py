"""How strongly each objective's extra term pulls, relative to L1: the calibration of the default weights.

    python -m bench.benchmarks.objective_scale

On a training batch of the embedded suite (restored = the noisy input, and a 3x3 box blur of it),
prints each term's value and the norm of its gradient with respect to the restored image, at
weight 1 and at the registered default weight, as a ratio to the L1 term's gradient norm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_terms() -> list[str]:
    """Every registered objective with an extra term (a ``weight`` keyword: the objectives' convention)."""
    from losses.registry import OBJECTIVES, objective_params

    return [n for n in OBJECTIVES.names() if "weight" in objective_params(n)]


def main() -> None:
    from bench.grids import SYNTHCITY_TRAIN
    from bench.runner import Context
    from bench.suites import SuiteOptions, SynthcitySuite
    from bench.train import draw_batch
    from losses import build_objective

    ctx = Context(SynthcitySuite(SuiteOptions()), "cpu", log=lambda *_: None)
    clean, noisy, sigma, labels = draw_batch(ctx.train_images, SYNTHCITY_TRAIN, 0, 5, ctx.train_labels)
    blur = F.avg_pool2d(F.pad(noisy, (1, 1, 1, 1), mode="replicate"), 3, 1)
    batch = {"labels": labels, "sigma": sigma}

    def grad_norm(loss_of, x: torch.Tensor) -> tuple[float, float]:
        r = x.clone().requires_grad_()
        loss = loss_of(r)
        loss.backward()
        return float(loss.detach()), float(r.grad.norm())

    l1 = {k: grad_norm(lambda r: F.l1_loss(r, clean), x) for k, x in (("noisy", noisy), ("blur", blur))}
    print("| term | input | value (w=1) | grad / L1 grad (w=1) | default w | grad / L1 grad (default) |")
    print("|---|---|---:|---:|---:|---:|")
    from losses.registry import objective_params

    for name in weighted_terms():
        w = objective_params(name)["weight"]
        for kind, x in (("noisy", noisy), ("blur", blur)):
            torch.manual_seed(0)
            obj = build_objective(name, ctx.resources, l1_weight=0.0, weight=1.0)
            obj.train()
            if getattr(obj, "queues", None):  # a queue as in training: filled by earlier batches
                for it in range(100, 100 + 8):
                    c, n, _, _ = draw_batch(ctx.train_images, SYNTHCITY_TRAIN, 0, it)
                    obj(n, c)
            value, g = grad_norm(lambda r, o=obj: o(r, clean, batch)[0], x)
            ratio = g / l1[kind][1]
            print(f"| {name} | {kind} | {value:.4g} | {ratio:.3g} | {w:g} | {ratio * w:.3g} |")


if __name__ == "__main__":
    main()
