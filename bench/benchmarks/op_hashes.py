"""Where two environments part: every aten operation of a few exact training steps, hashed, compared between
processes with other MKL branches, PyTorch kernels or thread counts.

    python -m bench.benchmarks.op_hashes --env "MKL_CBWR=COMPATIBLE" --env "MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2"
    python -m bench.benchmarks.op_hashes --arithmetic native --env "MKL_CBWR=COMPATIBLE"   # shows the tool finds it

Each environment (and this one, first) trains ``bench.exact_selftest``'s pairs for ``--steps`` steps under
``bench.exact_ops.ExactTrace(hashes=True)`` in its own process; the sequences of (operation, dtypes, sha256 of its
outputs) are compared with the first one's, and the first call that differs is named with its position. The
same trace lists any operation outside ``bench.exact_ops``' classes. This is how the MKL VML square root in Adam was
found: identical inputs, different outputs on MKL's AVX-512 and SSE branches.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def record(steps: int, arithmetic: str, threads: int) -> dict:
    """{pair: {"ops": [[name, dtypes, digest], ...], "unexpected": {...}}} of ``steps`` training steps."""
    from dataclasses import replace

    import torch

    from bench import exact_selftest
    from bench.exact_ops import ExactTrace
    from bench.train import build_for_training, train
    from losses import build_objective

    torch.set_num_threads(threads)
    cfg = replace(exact_selftest.recipe(arithmetic), iterations=steps)
    out = {}
    for name, (backbone, bkw, objective, okw) in exact_selftest.PAIRS.items():
        with ExactTrace(hashes=True) as trace:
            model = build_for_training(backbone, bkw, cfg, 0)
            with tempfile.TemporaryDirectory() as tmp:
                train(model, build_objective(objective, **okw), exact_selftest.images(), cfg, 0, Path(tmp) / "t.pth",
                      torch.device("cpu"), log=lambda *_: None)
        out[name] = {"ops": [[r.name, r.dtypes, r.digest] for r in trace.records], "unexpected": trace.unexpected}
    return out


def first_difference(a: list, b: list) -> tuple[int, list | None, list | None] | None:
    """(position, a's call, b's call) of the first call whose operation or outputs differ; None when equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i, x, y
    if len(a) != len(b):
        i = min(len(a), len(b))
        return i, a[i] if i < len(a) else None, b[i] if i < len(b) else None
    return None


def main(argv: list[str] | None = None) -> int:
    from bench.benchmarks.baseline_spread import parse_machine

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", action="append", default=[], metavar="ENV", help="NAME=VALUE ... (repeatable)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arithmetic", choices=("exact", "native"), default="exact")
    p.add_argument("--record", type=Path, help=argparse.SUPPRESS)  # a child process: write the trace here
    args = p.parse_args(argv)
    if args.record:
        args.record.write_text(json.dumps(record(args.steps, args.arithmetic, args.threads)))
        return 0
    envs = [{}] + [parse_machine(e) for e in args.env]
    traces = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, env in enumerate(envs):
            path = Path(tmp) / f"{i}.json"
            base = {k: v for k, v in os.environ.items() if k not in {n for e in envs for n in e}}
            subprocess.run([sys.executable, "-m", "bench.benchmarks.op_hashes", "--record", str(path), "--steps",
                            str(args.steps), "--threads", str(args.threads), "--arithmetic", args.arithmetic],
                           env={**base, **env}, check=True)
            traces.append(json.loads(path.read_text()))
    label = [" ".join(f"{k}={v}" for k, v in env.items()) or "this environment" for env in envs]
    status = 0
    for pair, ref in traces[0].items():
        print(f"{pair}: {len(ref['ops'])} aten calls in {args.steps} {args.arithmetic} steps"
              + (f"; outside bench.exact_ops: {ref['unexpected']}" if ref["unexpected"] else ""))
        for name, trace in zip(label[1:], traces[1:], strict=True):
            diff = first_difference(ref["ops"], trace[pair]["ops"])
            if diff is None:
                print(f"  {name}: every call identical")
            else:
                status = 1
                i, x, y = diff
                print(f"  {name}: call {i} differs: {x} here, {y} there")
    return status


if __name__ == "__main__":
    sys.exit(main())
