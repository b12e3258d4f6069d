"""A real ``bench`` process on the tiny suite, for the reliability tests (killed, raced, broken on purpose).

    python tests/grid_driver.py RESULTS OBJECTIVES [--kill-after-checkpoint N] [--kill-in-result-write]

Prints ``{"before": .., "finished": .., "failed": ..}`` and exits 1 when cells failed, like ``bench run``.
``explode`` is an objective registered here whose loss turns NaN at its third step.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.config import TrainConfig  # noqa: E402
from bench.grids import Grid, product  # noqa: E402
from bench.runner import run_grid  # noqa: E402
from bench.suites import SuiteOptions, build_suite  # noqa: E402
from bench.synthcity.dataset import SynthcitySpec  # noqa: E402
from losses.pixel import L1Objective  # noqa: E402
from losses.registry import register_objective  # noqa: E402

TINY = SynthcitySpec(height=64, width=128, n_train=12, n_val=4)
TRAIN = TrainConfig(iterations=30, batch=2, crop=32, lr=1e-3, checkpoint_every=10)


class Explode(L1Objective):
    steps = 0

    def forward(self, restored, clean, batch=None):
        loss, terms = super().forward(restored, clean, batch)
        Explode.steps += 1
        return (loss * float("nan") if Explode.steps >= 3 else loss), terms


def suite():
    from seg_eval.train_embedded import SegTrainSpec

    return build_suite("synthcity", SuiteOptions(synthcity=TINY, seg_train=SegTrainSpec(iterations=4, batch=2, crop=64)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("objectives")
    ap.add_argument("--kill-after-checkpoint", type=int)
    ap.add_argument("--kill-in-result-write", action="store_true")
    ap.add_argument("--signal-at", nargs=2, metavar=("SIGNAL", "ITERATION"),
                    help="send this signal (TERM, INT) to itself while drawing the batch of that iteration")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from bench import distributed

    device = distributed.init_from_env("cpu")  # under torchrun: gloo, one process per rank
    register_objective("explode", "test: NaN at step 3")(Explode)
    if args.kill_after_checkpoint:
        import bench.train as train_module

        original = train_module.save_checkpoint

        def save_then_die(state, path, objective=None, extra=None):
            original(state, path, objective, extra)
            if state.iteration == args.kill_after_checkpoint:
                os.kill(os.getpid(), signal.SIGKILL)

        train_module.save_checkpoint = save_then_die
    if args.kill_in_result_write:  # die inside the real atomic write of result.json, before its rename
        original_fsync = os.fsync

        def fsync_then_die(fd):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if ".result.json." in target and "ffdnet_small__" in target:
                os.kill(os.getpid(), signal.SIGKILL)
            original_fsync(fd)

        os.fsync = fsync_then_die
    if args.signal_at:
        import bench.train as train_module

        name, at = args.signal_at[0], int(args.signal_at[1])
        original_draw = train_module.draw_batch

        def draw_then_signal(images, cfg, seed, it, labels=None):
            if it == at:
                os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
            return original_draw(images, cfg, seed, it, labels)

        train_module.draw_batch = draw_then_signal
    grid = Grid("reliability", "test", product(("ffdnet_small",), tuple(args.objectives.split(","))),
                test_sigmas=(25.0,), train={"synthcity": TRAIN})
    from bench.base.errors import Interrupted

    try:
        before, finished, failed = run_grid(grid, suite(), args.results, device, log=lambda m: print(m, file=sys.stderr))
    except Interrupted as e:
        print(json.dumps({"interrupted": str(e)}))
        return 128 + e.signum
    if not distributed.is_main():
        return 0
    print(json.dumps({"before": before, "finished": finished, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
