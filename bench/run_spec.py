"""One description of a run, executed the same way by every launcher.

A ``RunSpec`` holds everything that decides what a run does (the resolved grid, the suite and its options,
the results folder, the device, threads, validation curve, rerun/clean-failed, shard, plugins). It is
JSON-serialisable: ``bench run`` builds it once; the local process, every ``--workers`` process
(``python -m bench exec SPEC.json``), every submitit job and every torchrun rank call ``execute`` on it,
so no option can be dropped on one path. What depends on the machine (is the device there?) is checked
in ``execute``, where the job runs, so a login node without a GPU can submit GPU jobs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.base.errors import BenchError
from bench.grids import Grid, grid_from_dict
from bench.suites import SuiteOptions

SPEC_VERSION = 1


@dataclass(frozen=True)
class RunOptions:
    """How the cells are run (not what they compute: that is in the grid and the cell hashes)."""

    device: str = "cpu"
    threads: int = 1  # torch CPU threads of each process
    val_every: int = 0  # record the validation curve every N iterations (0: off)
    rerun: bool = False  # recompute finished and failed cells from scratch
    clean_failed: bool = False  # retry failed cells from their last checkpoint
    shard: tuple[int, int] | None = None  # cells i, i + n, ... for (i, n)
    eval_batch: int | None = None  # images per restoration batch (None: from the image size)
    eval_tile: int = 0  # restore in tiles of this side with overlap (0: whole images)
    loader_workers: int | None = None  # processes drawing training batches ahead (None: 0 on CPU, up to 4 per GPU)


@dataclass(frozen=True)
class RunSpec:
    grid: Grid
    suite: str
    results: Path
    suite_options: SuiteOptions = field(default_factory=SuiteOptions)
    options: RunOptions = field(default_factory=RunOptions)
    plugins: tuple[str, ...] = ()  # canonical plugin specs, imported before anything is built

    def with_options(self, **changes) -> RunSpec:
        return dataclasses.replace(self, options=dataclasses.replace(self.options, **changes))

    def cells(self):
        from bench.runner import select_shard

        return select_shard(self.grid.cells(self.suite), self.options.shard)

    def to_dict(self) -> dict:
        return {"version": SPEC_VERSION, "grid": self.grid.to_dict(), "suite": self.suite,
                "results": str(self.results), "suite_options": _suite_options_to_dict(self.suite_options),
                "options": {**dataclasses.asdict(self.options),
                            "shard": list(self.options.shard) if self.options.shard else None},
                "plugins": list(self.plugins)}

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def write(self, folder: Path) -> Path:
        """Write this spec as ``<folder>/spec-<key>.json`` (atomically); returns the path."""
        from bench.base.atomic import atomic_write_json

        path = Path(folder) / f"spec-{self.key()}.json"
        atomic_write_json(path, self.to_dict())
        return path


def spec_from_dict(d: dict) -> RunSpec:
    from bench.plugins import load_plugins

    if d.get("version") != SPEC_VERSION:
        raise BenchError(f"run specification of version {d.get('version')!r}; this bench reads {SPEC_VERSION}")
    plugins = load_plugins(d["plugins"])  # before the grid: its rows may name what they register
    o = d["options"]
    return RunSpec(grid_from_dict(d["grid"]), d["suite"], Path(d["results"]),
                   _suite_options_from_dict(d["suite_options"]),
                   RunOptions(**{**o, "shard": tuple(o["shard"]) if o["shard"] else None}), plugins)


def read_spec(path: Path) -> RunSpec:
    """A run specification written by ``RunSpec.write``; anything else is refused naming the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"run specification {path} is unreadable ({e})") from None
    if not isinstance(data, dict):
        raise BenchError(f"run specification {path} is a JSON {type(data).__name__}, not the object `bench run` "
                         "writes; run the grid with `bench run` instead")
    try:
        return spec_from_dict(data)
    except BenchError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BenchError(f"run specification {path} is not one `bench run` wrote ({type(e).__name__}: {e}); run the "
                         "grid with `bench run` instead") from None


_NESTED = {"synthcity": ("bench.synthcity.dataset", "SynthcitySpec"),
           "seg_train": ("seg_eval.train_embedded", "SegTrainSpec"),
           "feature_train": ("losses.train_features", "FeatureTrainSpec")}


def _suite_options_to_dict(opts: SuiteOptions) -> dict:
    out = {}
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        out[f.name] = dataclasses.asdict(v) if dataclasses.is_dataclass(v) else str(v) if isinstance(v, Path) else v
    return out


def _suite_options_from_dict(d: dict) -> SuiteOptions:
    import importlib

    kwargs = {}
    for f in dataclasses.fields(SuiteOptions):
        v = d.get(f.name)
        if f.name in _NESTED and v is not None:
            module, cls = _NESTED[f.name]
            v = getattr(importlib.import_module(module), cls)(**v)
        elif isinstance(v, str) and "Path" in str(f.type) and f.name not in ("seg_config", "seg_checkpoint"):
            v = Path(v)
        if v is not None:
            kwargs[f.name] = v
    return SuiteOptions(**kwargs)


def execute(spec: RunSpec, only: set[str] | None = None, log: Callable[[str], None] = print) -> tuple[int, int, int]:
    """Run the spec's pending cells (or only the cells ``only``) in this process; (done before, finished, failed).

    The one entry point of every launcher: the device is checked here, where the cells run."""
    import torch

    from bench import distributed
    from bench.runner import run_grid
    from bench.suites import build_suite

    o = spec.options
    if o.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"device {o.device} asked for, but torch sees no CUDA device on {_host()}; use --device cpu")
    torch.set_num_threads(o.threads)
    device = distributed.init_from_env(o.device)  # under torchrun: join the group, one device per rank
    return run_grid(spec.grid, build_suite(spec.suite, spec.suite_options), spec.results, device, log=log,
                    rerun=o.rerun, clean_failed=o.clean_failed, shard=o.shard, only=only, val_every=o.val_every,
                    eval_batch=o.eval_batch, eval_tile=o.eval_tile, loader_workers=o.loader_workers)


def _host() -> str:
    import platform

    return platform.node() or "this host"


def prepare_shared(spec: RunSpec, log: Callable[[str], None]) -> None:
    """Before several local processes start: build the suite's data and weights once, so that none race to
    build them."""
    from bench.runner import validate
    from bench.suites import build_suite
    from losses.registry import objective_needs

    cells = spec.cells()
    validate(cells)
    suite = build_suite(spec.suite, spec.suite_options)
    suite.data_root(log)
    suite.segmenter_files(log)
    if any({"features", "lpips"} & objective_needs(c.objective) for c in cells):
        suite.feature_files(log)


def reset_once(spec: RunSpec) -> RunSpec:
    """Before several processes or jobs start: --rerun and --clean-failed become files removed here, once (each
    process doing it would redo cells another had just finished); returns the spec the processes run, with both
    off."""
    from bench.cell_state import CHECKPOINT_FILE, CHECKPOINT_NOTE, FAILED_FILE, cell_state
    from bench.results import RESULT_FILE, check_writable
    from bench.runner import reset_cell_files

    base = spec.results / spec.suite
    check_writable(base)
    for c in spec.cells():
        state = cell_state(base / c.dirname()).state
        if spec.options.rerun and state in ("done", "failed"):
            reset_cell_files(base / c.dirname(), (RESULT_FILE, FAILED_FILE, CHECKPOINT_FILE, CHECKPOINT_NOTE))
        elif spec.options.clean_failed and state == "failed":
            reset_cell_files(base / c.dirname(), (FAILED_FILE,))
    return spec.with_options(rerun=False, clean_failed=False)


def launch_workers(spec: RunSpec, workers: int, log: Callable[[str], None]) -> int:
    """``workers`` processes running ``spec`` (``python -m bench exec``); the cells' locks share the work out."""
    import subprocess

    prepare_shared(spec, log)
    path = reset_once(spec).write(spec.results / "_specs")
    import signal

    procs = [subprocess.Popen([sys.executable, "-m", "bench", "exec", str(path)]) for _ in range(workers)]
    log(f"{workers} workers x {spec.options.threads} threads started ({path})")

    def forward(signum, _frame) -> None:  # a SIGTERM to this process alone must not leave the workers training
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return max(p.wait() for p in procs)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def submitit_job(spec_dict: dict, cell_id: str) -> dict:
    """A submitit job: one cell of the spec (under its lock; resumes; atomic result). Returns its summary."""
    spec = spec_from_dict(spec_dict)
    before, finished, failed = execute(spec, only={cell_id}, log=_stderr_log)
    if failed:
        raise BenchError(f"cell {cell_id} failed; see its failed.json under {spec.results}/{spec.suite}")
    return {"cell_id": cell_id, "done_before": before, "finished": finished}


def _stderr_log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
