"""A quick self-test of exact arithmetic: 12 training steps of each built-in exact pair on fixed images, whose weight
fingerprints every machine must reproduce bit for bit (the committed ones are in ``results/baselines/smoke.json``,
section ``exact_selftest``).

    python -m bench.exact_selftest [--threads N]      # prints {pair: {step: sha256}} as JSON

``bench doctor`` runs it and compares with the committed fingerprints; ``tests/test_exact.py`` runs it in processes
with other MKL branches, PyTorch kernels and thread counts. The images are drawn from a seeded integer generator,
so no data set is needed; the recipe exercises warm-up, a cosine schedule, gradient clipping, the moving average,
SSIM and CBDNet's noise-estimate terms.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from bench.config import TrainConfig

STEPS = 12
PAIRS: dict[str, tuple[str, dict, str, dict]] = {  # name: (backbone, its parameters, objective, its parameters)
    "ffdnet_tiny x ssim": ("ffdnet_tiny", {}, "ssim", {}),
    "cbdnet_small x l1+noise terms": ("cbdnet_small", {}, "l1", {"asymmetric_weight": 0.5, "tv_weight": 0.05}),
}
SECTION = "exact_selftest"


def recipe(arithmetic: str = "exact") -> TrainConfig:
    return TrainConfig(iterations=STEPS, batch=4, crop=32, lr=1e-3, warmup=0.25, grad_clip=0.2, ema_decay=0.99,
                       schedule="cosine", arithmetic=arithmetic)


def images() -> torch.Tensor:
    """(8, 3, 48, 48) uint8: a seeded integer draw, the same on every machine."""
    return torch.randint(0, 256, (8, 3, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(2026))


def run(arithmetic: str = "exact") -> dict[str, dict[str, str]]:
    """{pair: {step: sha256 of the weights}} after steps 1, 10 and 12 (``bench.base.exact.fingerprint``); with
    ``arithmetic`` "native" the same recipe in native arithmetic, fingerprinted after the last step only."""
    from bench.base.exact import fingerprint
    from bench.train import build_for_training, train
    from losses import build_objective

    cfg, data, out = recipe(arithmetic), images(), {}
    for name, (backbone, bkw, objective, okw) in PAIRS.items():
        model = build_for_training(backbone, bkw, cfg, 0)
        with tempfile.TemporaryDirectory() as tmp:
            summary = train(model, build_objective(objective, **okw), data, cfg, 0, Path(tmp) / "t.pth",
                            torch.device("cpu"), log=lambda *_: None)
        out[name] = summary.get("fingerprints") or {str(STEPS): fingerprint(model)}
    return out


_CACHE: dict[str, dict[str, dict[str, str]]] = {}


def run_once(arithmetic: str = "exact") -> dict[str, dict[str, str]]:
    """``run``, computed once per process (``bench doctor`` may be asked many times in one process, as tests do)."""
    if arithmetic not in _CACHE:
        _CACHE[arithmetic] = run(arithmetic)
    return _CACHE[arithmetic]


def compare(found: dict[str, dict[str, str]], committed: dict[str, dict[str, str]]) -> list[str]:
    """One line per pair whose fingerprints differ, naming the first step that differs; [] when all agree."""
    from bench.base.exact import first_differing_step

    lines = []
    for name, steps in committed.items():
        first = first_differing_step(found.get(name, {}), steps)
        if first is not None:
            lines.append(f"{name}: the weights differ from the committed ones from step {first}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arithmetic", choices=("exact", "native"), default="exact")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(run(args.arithmetic), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
