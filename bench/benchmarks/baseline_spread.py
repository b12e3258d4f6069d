"""How far a grid's numbers move with the thread count and the machine (stand-ins for another CPU) and with the
seed, and the regression tolerances that follow; optionally writes the committed baseline with its derivation.

    python -m bench.benchmarks.baseline_spread --grid smoke --seeds 0 1 2 --threads 1 2 \\
        --machine "ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=AVX2" \\
        --write results/baselines/smoke.json

Runs ``bench run --grid G --seeds S... --workers 1 --threads T`` once per thread count, and once (one thread) per
``--machine``: environment variables that make this CPU compute as another would (PyTorch's kernels for another
instruction set, MKL's and oneDNN's for another CPU). All runs go at once (the numbers do not depend on the load),
each into its own results folder under ``--work`` (kept, so a second call reuses finished cells). The difference
between two runs of one (cell, seed) is what the regression check must tolerate:

- in native arithmetic, training amplifies rounding into differences the size of a seed's: tolerance per metric =
  ``--factor`` x the root mean square of those differences over every cell, seed and test sigma;
- in exact arithmetic (``bench.base.exact``: every cell of the grid), the runs train the same weights to the bit (the
  script compares the cells' weight fingerprints and refuses to write a baseline otherwise) and only the measuring
  chain's rounding is left, as in the instrument check: tolerance = max(``--factor`` x the largest difference, the
  instrument's resolution of 1e-4). The baseline records the seed-0 cells' fingerprints (``bench check`` compares
  them first), ``bench.exact_selftest``'s 12-step fingerprints from every run's environment, and the CPU.

The target bounds are PSNR 0.15 dB, SSIM 0.005, mIoU 0.015: a tolerance above its bound is never clipped to it (that
would hide chaos as regressions or let CI pass by luck); the baseline lists it under ``exceeds_bounds`` and the exit
code is 1 (``--strict``: then nothing is written). The baseline's values are the seed-0 cells at the largest thread
count; its ``instrument`` section (``bench.instrument``) freezes the first of them.
"""
from __future__ import annotations

import argparse
import math
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from bench.check import values_from_results
from bench.metrics import METRICS, ordered


def json_dumps(v) -> str:
    import json

    return json.dumps(v, sort_keys=True)

BOUNDS = {"psnr": 0.15, "ssim": 0.005, "miou": 0.015}  # another metric's bound: its registered tolerance


def bound(metric: str) -> float:
    return BOUNDS.get(metric, METRICS[metric].tolerance)


def metrics_of(by_run: dict) -> list[str]:
    """The metrics the runs' values hold, in the registry's order."""
    return ordered({k.rsplit("|", 1)[1] for vals in by_run.values() for k in vals})


def parse_machine(text: str) -> dict[str, str]:
    """``"A=1 B=2"`` -> {"A": "1", "B": "2"}: the environment of one stand-in machine."""
    env = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SystemExit(f"--machine {text!r}: expected NAME=VALUE items separated by spaces")
        env[key] = value
    return env


def _start(grid: str, seeds: list[int], threads: int, results: Path, env: dict[str, str] | None = None
           ) -> subprocess.Popen:
    import os

    cmd = [sys.executable, "-m", "bench", "run", "--grid", grid, "--seeds", *map(str, seeds), "--workers", "1",
           "--threads", str(threads), "--results", str(results)]
    print("$", " ".join(f"{k}={v}" for k, v in (env or {}).items()), " ".join(cmd[1:]), flush=True)
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})})


def _grid(ref: str, seeds: list[int]):
    from bench.grids import get_grid

    return get_grid(ref).with_seeds(seeds).with_precision(None)


def _values(grid: str, seeds: list[int], results: Path) -> dict[str, float]:
    from bench.results import load_results

    ids = {c.cell_hash() for c in _grid(grid, seeds).cells("synthcity")}
    return values_from_results(load_results(results, "synthcity"), ids)


def _fingerprints(grid: str, seeds: list[int], results: Path) -> dict[str, dict[str, str]]:
    from bench.check import fingerprints_from_results
    from bench.results import load_results

    ids = {c.cell_hash() for c in _grid(grid, seeds).cells("synthcity")}
    return fingerprints_from_results(load_results(results, "synthcity"), ids)


def _selftest(env: dict[str, str], threads: int) -> dict[str, dict[str, str]]:
    """``bench.exact_selftest``'s fingerprints in a process with ``env`` and ``threads``."""
    import json
    import os

    done = subprocess.run([sys.executable, "-m", "bench.exact_selftest", "--threads", str(threads)],
                          env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def spread(by_threads: dict) -> dict:
    """Per metric: RMS and largest of the differences between runs (thread counts, stand-in machines; same cell,
    seed, sigma) and the mean over cells, sigmas and runs of the standard deviation over seeds."""
    counts = list(by_threads)
    keys = set.intersection(*(set(v) for v in by_threads.values()))
    out: dict[str, dict[str, float]] = {"thread_rms_diff": {}, "thread_max_diff": {}, "seed_std": {}}
    for metric in metrics_of(by_threads):
        diffs = [by_threads[a][k] - by_threads[b][k] for k in keys if k.endswith("|" + metric)
                 for i, a in enumerate(counts) for b in counts[i + 1:]]
        out["thread_rms_diff"][metric] = math.sqrt(statistics.fmean(d * d for d in diffs))
        out["thread_max_diff"][metric] = max(abs(d) for d in diffs)
        groups: dict[tuple, list[float]] = {}
        for t, vals in by_threads.items():
            for k, v in vals.items():
                if k.endswith("|" + metric):
                    slug, sigma, _ = k.split("|")
                    groups.setdefault((t, slug.rsplit("__s", 1)[0], sigma), []).append(v)
        out["seed_std"][metric] = statistics.fmean(statistics.stdev(v) for v in groups.values() if len(v) > 1)
    return out


def main(argv: list[str] | None = None) -> int:
    from bench.base.atomic import atomic_write_json
    from bench.precision import cpu_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", default="smoke", help="a grid name or file (bench run --grid)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--machine", action="append", default=[], metavar="ENV",
                   help="NAME=VALUE ... of a stand-in machine, run with one thread (repeatable)")
    p.add_argument("--machine-seeds", type=int, nargs="+", default=None,
                   help="the seeds the stand-in machines train (default: --seeds; MKL's SSE2 branch trains exact "
                        "cells several times slower)")
    p.add_argument("--factor", type=float, default=3.0,
                   help="tolerance = factor x RMS difference (native), or x the largest difference (exact)")
    p.add_argument("--work", type=Path, default=Path("results/runs/_spread"), help="results folders (kept)")
    p.add_argument("--strict", action="store_true", help="write nothing when a tolerance exceeds its bound")
    p.add_argument("--write", type=Path, help="write the baseline here (values: seed 0 at the most threads)")
    args = p.parse_args(argv)
    if len(args.threads) < 2 or 0 not in args.seeds:
        raise SystemExit("need at least two thread counts and seed 0")
    machines = [parse_machine(m) for m in args.machine]
    runs = {f"threads {t}": (t, {}) for t in args.threads}
    runs.update({f"machine {i + 1}": (1, env) for i, env in enumerate(machines)})
    folders = {name: args.work / name.replace(" ", "") for name in runs}
    seeds_of = {name: args.seeds if name.startswith("threads") else (args.machine_seeds or args.seeds) for name in runs}
    procs = [_start(args.grid, seeds_of[name], t, folders[name], env) for name, (t, env) in runs.items()]  # load-free
    if any(p.wait() for p in procs):
        raise SystemExit("a run failed; see its output above")
    by_run = {name: _values(args.grid, seeds_of[name], folder) for name, folder in folders.items()}
    prints = {name: _fingerprints(args.grid, seeds_of[name], folder) for name, folder in folders.items()}
    reference = prints[f"threads {args.threads[0]}"]
    same_bits = all(reference.get(slug) == steps for p in prints.values() for slug, steps in p.items())
    print("fingerprints of the trained weights: " + ("identical in every run" if same_bits else
          "DIFFER between runs: " + ", ".join(n for n, p in prints.items()
                                               if any(reference.get(s) != v for s, v in p.items()))))
    s = spread(by_run)
    from bench.instrument import RESOLUTION

    arithmetic = {c.train.arithmetic for c in _grid(args.grid, [0]).cells("synthcity")}
    exact = arithmetic == {"exact"}
    if exact and not same_bits and args.write:
        raise SystemExit("exact arithmetic trained other weights in some run: no baseline written")
    if exact:
        rule = (f"tolerance = max({args.factor:g} x the largest difference between runs (thread counts, stand-in "
                "machines; same cell, seed and sigma), the instrument's resolution), rounded up to 1e-4: exact "
                "arithmetic trains the same weights in every run")
        tolerances = {m: max(RESOLUTION.get(m, 1e-4), math.ceil(args.factor * s["thread_max_diff"][m] * 1e4) / 1e4)
                      for m in metrics_of(by_run)}
    else:
        rule = (f"tolerance = {args.factor:g} x RMS of the differences between runs (thread counts, stand-in "
                "machines; same cell, seed and sigma), rounded up to 1e-4")
        tolerances = {m: math.ceil(args.factor * s["thread_rms_diff"][m] * 1e4) / 1e4 for m in metrics_of(by_run)}
    print(f"\ngrid {args.grid} ({'exact' if exact else 'native'} arithmetic), seeds {args.seeds}, runs "
          + "; ".join(f"{n}{' ' + ' '.join(f'{k}={v}' for k, v in env.items()) if env else ''}"
                      for n, (_, env) in runs.items()))
    print(f"| metric | RMS run diff | max run diff | mean seed std | tolerance (x{args.factor:g}) | bound |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in metrics_of(by_run):
        print(f"| {m} | {s['thread_rms_diff'][m]:.4f} | {s['thread_max_diff'][m]:.4f} | {s['seed_std'][m]:.4f} | "
              f"{tolerances[m]:.4f} | {bound(m)} |")
    over = [m for m in tolerances if tolerances[m] > bound(m)]
    if over:
        print(f"not stable enough: the tolerance of {', '.join(over)} exceeds its bound"
              + ("; nothing written" if args.strict else ""))
        if args.strict:
            return 1
    if args.write:
        top = max(args.threads)
        values = {k: v for k, v in by_run[f"threads {top}"].items() if k.split("|")[0].endswith("__s0")}
        grid = _grid(args.grid, [0])
        from bench.instrument import build_section
        from bench.results import load_results
        from bench.suites import SuiteOptions, build_suite

        ids = {c.cell_hash() for c in grid.cells("synthcity")}
        top_folder = folders[f"threads {top}"]
        instrument = build_section(build_suite("synthcity", SuiteOptions()), load_results(top_folder, "synthcity"),
                                   top_folder, args.write, ids)
        selftests = {f"threads {t}{' ' + ' '.join(f'{k}={v}' for k, v in env.items()) if env else ''}":
                     _selftest(env, t) for t, env in [(t, {}) for t in args.threads] + [(1, e) for e in machines]}
        first = next(iter(selftests.values()))
        if any(v != first for v in selftests.values()):
            raise SystemExit("the exact self-test's fingerprints differ between runs: " + json_dumps(selftests))
        top_prints = {k: v for k, v in prints[f"threads {top}"].items() if k.endswith("__s0")}
        atomic_write_json(args.write, {"instrument": instrument,
            "fingerprints": top_prints,
            "exact_selftest": {"steps": 12, "fingerprints": first, "command": "python -m bench.exact_selftest"},
            "suite": "synthcity", "grid": args.grid, "tolerances": tolerances, "values": values,
            "written_with": {"threads": top, "seed": 0, "precision": grid.train["synthcity"].precision,
                             "arithmetic": grid.train["synthcity"].arithmetic},
            "derivation": {"rule": rule, "arithmetic": "exact" if exact else "native",
                           "factor": args.factor, "seeds": args.seeds, "threads": args.threads,
                           "machines": [{"threads": 1, "env": env, "seeds": args.machine_seeds or args.seeds}
                                        for env in machines],
                           "cpu": cpu_name(), "fingerprints_identical_across_runs": same_bits,
                           "selftest_runs": sorted(selftests),
                           "tolerances": tolerances, "bounds": BOUNDS, "exceeds_bounds": over, **s,
                           "command": "python -m bench.benchmarks.baseline_spread "
                                      + shlex.join(argv if argv is not None else sys.argv[1:])}})
        print(f"baseline {args.write} written ({len(values)} values)")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
