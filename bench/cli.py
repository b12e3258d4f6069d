"""``python -m bench``: run, report, prepare, list."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from bench.base.errors import BenchError
from bench.paths import REPO_ROOT, default_results_root

PAPER_TABLES = REPO_ROOT / "results" / "paper_tables.csv"


def _plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a module (my_pkg.nets) or a .py file first, for the backbones, objectives, grids or "
                   "suites it registers (repeatable; entry points of group d2sm_bench.plugins load by themselves)")


def _grid_args(p: argparse.ArgumentParser, default: str | None = "smoke") -> None:
    p.add_argument("--grid", default=default, help="a registered grid (python -m bench list), a grid file "
                   "(path/to/grid.toml) or a dotted path (my_pkg.grids:MINE)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override the grid: train[.SUITE].FIELD=V, objective[.NAME].PARAM=V, backbone[.NAME].PARAM=V, "
                   "seeds=[0,1], test_sigmas=[25,50] (values in TOML syntax; part of every cell's hash)")
    p.add_argument("--protocol", choices=("ours", "authors"), default=None,
                   help="measurement protocol (default: ours): 'authors' shaves 64 px before PSNR/SSIM, seeds the "
                   "test noise as their code does and centres the contextual loss by the target batch (docs/protocol.md)")
    p.add_argument("--only", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="only the grid's rows with this backbone=NAME and/or objective=NAME (a short trial on real "
                   "data: --only backbone=ffdnet objective=l1 --set train.iterations=200)")
    _plugin_arg(p)


def _suite_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default=None, help="synthcity (embedded, default unless the grid file names one), "
                   "cityscapes, or one a plugin registers")
    p.add_argument("--data-root", type=Path, help="dataset folder holding leftImg8bit/ and gtFine/")
    p.add_argument("--label-root", type=Path, help="cityscapes: the folder whose gtFine/ holds the train-id labels, "
                   "when not the dataset's (see cityscapes-labels --out)")
    p.add_argument("--seg-config", help="cityscapes: the evaluator's mmseg config, a file or a name among mmseg's "
                   "Cityscapes configs (e.g. segformer_mit-b0_8xb1-160k_cityscapes-1024x1024)")
    p.add_argument("--seg-checkpoint", help="cityscapes: the evaluator's weights, a file, a URL or 'zoo' (the model "
                   "zoo's for that config); URLs need --allow-download unless already in the torch hub cache")
    p.add_argument("--allow-download", action="store_true", help="fetch a segmenter checkpoint given as a URL/zoo")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="unpickle the segmenter checkpoint fully (runs code from it; only for files you trust)")
    p.add_argument("--evaluator", help="synthcity: which embedded evaluator scores (default unet; `bench list` names "
                   "them, e.g. erfnet); results of another evaluator never mix with a folder's (bench score --cell "
                   "and --rescore store theirs beside the cells)")
    p.add_argument("--vgg-weights", type=Path,
                   help="cityscapes: torchvision's vgg19-dcbb9e9d.pth (default: the torch hub cache)")
    p.add_argument("--lpips-weights", type=Path,
                   help="cityscapes: torchvision's alexnet-owt-7be5be79.pth for LPIPS (default: the torch hub cache)")


def _suite_options(args):
    from bench.suites import SuiteOptions

    return SuiteOptions(args.data_root, args.seg_config, args.seg_checkpoint, args.trust_checkpoint,
                        allow_download=args.allow_download, vgg_weights=args.vgg_weights,
                        lpips_weights=args.lpips_weights, label_root=args.label_root,
                        evaluator=getattr(args, "evaluator", None))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(
        "d2sm-bench: train denoisers with different objectives, score PSNR/SSIM and the mIoU a frozen "
        "segmenter reaches on their outputs, and rank them."))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train and score every unfinished cell of a grid (resumes)")
    _grid_args(p)
    _seeds_arg(p)
    _suite_args(p)
    p.add_argument("--results", type=Path, default=default_results_root(), help="results folder (default results/runs)")
    p.add_argument("--device", type=_device, default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=_at_least(1), default=None,
                   help="torch CPU threads per process (default: 1 per worker; cores / workers with --workers)")
    _precision_arg(p)
    p.add_argument("--amp", action="store_const", dest="precision", const="bf16", help="the same as --precision bf16")
    p.add_argument("--val-every", type=int, default=0, metavar="N",
                   help="record validation PSNR/mIoU (sigma 50, 16 val images) every N iterations (Figure 5 curves)")
    p.add_argument("--eval-batch", type=_at_least(1), default=None, metavar="N",
                   help="images per restoration batch in scoring (default: from the image size, 8 for synthcity, 1 "
                   "for 2048x1024)")
    p.add_argument("--eval-tile", type=_at_least(0), default=0, metavar="PX",
                   help="restore in tiles of PX with 64 px overlap (the whole-image result within 1e-4 for local "
                   "networks) where a full image does not fit in memory (default 0: whole images)")
    p.add_argument("--loader-workers", type=_at_least(0), default=None, metavar="N",
                   help="processes that draw training batches ahead of each step (default: 0 on a CPU, where the "
                   "cores train; up to 4 per GPU); the batches, and so the results, are the same for any N")
    p.add_argument("--report", action="store_true", help="print the grid's table when done")
    p.add_argument("--rerun", action="store_true", help="recompute finished (and failed) cells from scratch")
    p.add_argument("--clean-failed", action="store_true", help="retry failed cells (from their last checkpoint)")
    p.add_argument("--shard", type=_shard, metavar="I/N", help="run only cells I, I+N, I+2N, ... (job arrays)")
    p.add_argument("--workers", type=_at_least(0), default=0,
                   help="parallel local worker processes sharing the grid, cores / N threads each (default 0: on a "
                   "CPU, one single-thread worker per core and pending cell; one process on a GPU or with --threads)")
    p.add_argument("--launcher", choices=("local", "submitit"), default="local",
                   help="submitit: one Slurm job per pending cell (see --cluster, --partition ...)")
    p.add_argument("--cluster", default=None, help="submitit cluster: slurm (default when available), local, debug")
    p.add_argument("--partition", default=None, help="Slurm partition")
    p.add_argument("--timeout-min", type=int, default=24 * 60, help="Slurm time limit per cell (minutes)")
    p.add_argument("--gpus-per-node", type=int, default=0)
    p.add_argument("--cpus-per-task", type=int, default=8)
    p.add_argument("--wait", action="store_true", help="submitit: wait for the jobs and report failures")

    p = sub.add_parser("status", help="state of every cell of a grid: done, running (with progress), failed, pending")
    _grid_args(p)
    _seeds_arg(p)
    _precision_arg(p)
    p.add_argument("--suite", default=None)
    p.add_argument("--results", type=Path, default=default_results_root())

    p = sub.add_parser("report", help="print the ranked table of finished cells (markdown, csv, latex, html)")
    _grid_args(p, default=None)
    _seeds_arg(p)
    _precision_arg(p)
    p.add_argument("--suite", default=None)
    p.add_argument("--results", type=Path, default=default_results_root())
    p.add_argument("--format", default="markdown", choices=("markdown", "csv", "latex", "html"))
    p.add_argument("--paper", nargs="?", const=PAPER_TABLES, type=Path, default=None, metavar="CSV",
                   help="put the paper's numbers beside ours (default file: results/paper_tables.csv)")
    p.add_argument("--plots", type=Path, metavar="DIR", help="also write the figures (PNG) into DIR")
    p.add_argument("--ci", action="store_true", help="print each value's 95 %% bootstrap interval")
    p.add_argument("--resamples", type=_at_least(100), default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--claims", action="store_true",
                   help="print the paper's claims instead (one per row: holds / does not hold / undecided at each "
                   "sigma, with the difference and its interval; csv with --format csv)")
    p.add_argument("--seed-spread", type=Path, metavar="JSON",
                   help="a measured seed spread that lets single-seed rows be ranked: {\"source\", \"seeds\": N, "
                        "\"std\": {backbone or \"*\": {metric: std}}} (cited in the legend)")
    p.add_argument("--agreement", nargs="?", const="miou", metavar="METRIC",
                   help="print instead, per group and level, Kendall's tau between the rows' order under the cells' "
                   "evaluator and under each other one they were re-scored with (bench score --cell), with its "
                   "bootstrap interval and the rows that swap (default metric miou)")

    p = sub.add_parser("export", help="write the results as tables: results.<fmt> (one row per cell, seed, sigma and "
                       "metric) and images.<fmt> (per image: PSNR, SSIM, per-class intersect/union)")
    _grid_args(p, default=None)
    _seeds_arg(p)
    _precision_arg(p)
    p.add_argument("--suite", default=None)
    p.add_argument("--results", type=Path, default=default_results_root())
    p.add_argument("--format", default="csv", choices=("csv", "parquet"))
    p.add_argument("--out", type=Path, required=True, help="folder to write into")

    p = sub.add_parser("score", help="score a restorer trained elsewhere (--model --weights) or its outputs "
                       "(--restored DIR) with a cell's measuring chain; the result sits beside the cells")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a registered backbone, pkg.module:Class or path/to/file.py:Class")
    what.add_argument("--restored", type=Path, help="a folder of <level>/<image id>.png outputs for `bench noisy`'s "
                      "inputs, made by any tool")
    what.add_argument("--cell", type=Path, help="a finished cell's folder: scored again from its saved weights (no "
                      "training) at its own test settings, under this command's segmenter, protocol and metrics; "
                      "stored as its own result beside the cell (default --results: the cell's), the cell's is "
                      "never touched")
    what.add_argument("--rescore", action="store_true", help="every finished cell of --grid (--seeds, --only) in "
                      "--results, as --cell does one; cells already re-scored with these settings are skipped")
    p.add_argument("--weights", type=Path, help="with --model: its state dict (weights_only=True; a state_dict / "
                   "model / params wrapper and a module. prefix are recognised)")
    p.add_argument("--model-params", default="{}", help="with --model: its constructor's keyword arguments, JSON")
    p.add_argument("--noisy", type=Path, help="with --restored: the folder `bench noisy` wrote the inputs into; its "
                   "manifest must name this score's suite, levels, seed, degradation and protocol")
    p.add_argument("--name", help="the table row (default: the model, or the folder's name)")
    p.add_argument("--grid", default="smoke", help="the grid whose test settings (levels, metrics, degradation, "
                   "protocol) are used (default smoke: sigma 25 and 50)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as for run (test_sigmas=[..], "
                   "metrics=[..], test_degradation=...)")
    p.add_argument("--seed", type=int, default=0, help="the test noise's seed (a cell's is its training seed)")
    _seeds_arg(p)
    p.add_argument("--only", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="with --rescore: only the grid's rows with this backbone=NAME and/or objective=NAME")
    p.add_argument("--results", type=Path, default=None, help="where the result goes (default: the cell's results "
                   "folder for --cell, else " + str(default_results_root()) + ")")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None, dest="restore_precision",
                   help="with --model: restore in fp32 (default) or under bf16 autocast with channels_last, as a bf16 "
                   "cell does (--cell and --rescore restore in the cell's own precision)")
    _suite_args(p)
    _plugin_arg(p)

    p = sub.add_parser("noisy", help="write the exact test inputs a cell's restorer receives (float32 .npy per image "
                       "and level, with a manifest), for `bench score --restored`")
    p.add_argument("--out", type=Path, required=True, help="the folder to write <level>/<image id>.npy into")
    p.add_argument("--grid", default="smoke", help="the grid whose test levels and degradation are used")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0, help="the test noise's seed")
    _suite_args(p)
    _plugin_arg(p)

    p = sub.add_parser("prepare", help="generate the suite's data, train its embedded evaluator and feature network")
    _suite_args(p)
    p.add_argument("--force", action="store_true", help="retrain the embedded weights even if present")
    p.add_argument("--only", choices=("segmenter", "features"), help="prepare only these embedded weights")
    _plugin_arg(p)

    p = sub.add_parser("check", help="compare finished cells with a committed baseline; non-zero exit on regression")
    p.add_argument("--baseline", type=Path, required=True, help="e.g. results/baselines/smoke.json")
    _grid_args(p)
    _seeds_arg(p)
    _precision_arg(p)
    p.add_argument("--suite", default=None)
    p.add_argument("--results", type=Path, default=default_results_root())
    p.add_argument("--tolerance", action="append", default=[], metavar="METRIC=TOL",
                   help="override a tolerance, e.g. --tolerance psnr=0.2 (defaults: psnr 0.1, ssim 0.005, miou 0.01)")
    p.add_argument("--update-baseline", action="store_true", help="write the current values as the new baseline")
    p.add_argument("--instrument", action=argparse.BooleanOptionalAction, default=None,
                   help="also check the measuring chain on its own: reference rows and the baseline's frozen network, "
                   "scored here (~15 s on a CPU) to tolerances from their rounding spread (default: on where the "
                   "baseline has an instrument section; --instrument makes a missing section a failure; "
                   "--update-baseline writes one unless --no-instrument)")

    p = sub.add_parser("list", help="grids (with cell counts), backbones, objectives and suites")
    _plugin_arg(p)

    p = sub.add_parser("exec", help="execute a run specification written by `bench run` (what workers run)")
    p.add_argument("spec", type=Path, help="a spec-<key>.json under <results>/_specs/")
    p.add_argument("--only", action="append", metavar="CELL_ID", help="only this cell (repeatable)")

    p = sub.add_parser("cityscapes-labels", help="write *_gtFine_labelTrainIds.png from *_gtFine_labelIds.png "
                       "with cityscapesscripts' label table")
    p.add_argument("--data-root", type=Path, required=True, help="the folder holding leftImg8bit/ and gtFine/")
    p.add_argument("--force", action="store_true", help="rewrite existing train-id files")
    p.add_argument("--out", type=Path, help="write the train ids under OUT/gtFine/ instead of beside the labelIds "
                   "(a read-only dataset; then run with --label-root OUT)")

    p = sub.add_parser("doctor", help="what the suite needs, what was found (with checksums), how to get the rest")
    _suite_args(p)
    _grid_args(p, default="full")
    return parser


def _at_least(low: int):
    """An argparse type: an integer >= ``low``, with the accepted range in the message."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, not {text!r}")
        return value
    return parse


def _shard(text: str) -> tuple[int, int]:
    i, _, n = text.partition("/")
    try:
        shard = int(i), int(n)
    except ValueError:
        shard = None
    if shard is None or not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, e.g. 0/4, not {text!r}")
    return shard


def _device(text: str) -> str:
    """cpu, cuda or cuda:N (whether it exists is checked where the cells run)."""
    kind, _, index = text.partition(":")
    if kind == "cpu" and not index or kind == "cuda" and (not index or index.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, not {text!r}")


def _precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                   help="training and restoration precision of every cell (default: the grid's; smoke pins fp32, "
                   "the other synthcity grids use auto: bf16 autocast + channels_last where a cached "
                   "micro-benchmark finds it faster on this machine, else fp32)")


def _seed(text: str) -> int | str:
    """A training seed (an integer >= 0) or "auto"."""
    return "auto" if text == "auto" else _at_least(0)(text)


def _seeds_arg(p: argparse.ArgumentParser) -> None:
    from bench.seed_rule import DEFAULT_MAX_SEEDS, START

    p.add_argument("--seeds", type=_seed, nargs="+", metavar="S",
                   help="training seeds of every cell (default: the grid's, 0); reports give mean ± std over them. "
                   f"'auto': {START} seeds per row, then more only for rows whose mIoU comparison with the group's "
                   "best row or l1 is undecided, up to --max-seeds (letters at the look-corrected level)")
    p.add_argument("--max-seeds", type=_at_least(START + 1), default=None, metavar="K",
                   help=f"with --seeds auto: the most seeds of a row (default {DEFAULT_MAX_SEEDS})")


def _auto(args) -> bool:
    """Whether the command line asks for ``--seeds auto`` (alone: it cannot be mixed with seed numbers)."""
    seeds = getattr(args, "seeds", None) or []
    if "auto" not in seeds:
        if getattr(args, "max_seeds", None) is not None:
            raise BenchError("--max-seeds applies to --seeds auto only: add --seeds auto, or drop --max-seeds")
        return False
    if len(seeds) > 1:
        raise BenchError(f"--seeds {' '.join(map(str, seeds))}: 'auto' stands alone (--seeds auto), or give seed "
                         "numbers (--seeds 0 1 2)")
    return True


def _auto_plan(args, grid):
    """(the ``--seeds auto`` plan replayed over the results folder, the grid at the seeds it needs now)."""
    from bench.auto_seeds import grid_plan
    from bench.results import load_results
    from bench.seed_rule import DEFAULT_MAX_SEEDS

    return grid_plan(grid, args.suite, load_results(args.results, args.suite), args.max_seeds or DEFAULT_MAX_SEEDS)


def _grid(args, device: str = "cpu"):
    """The command line's grid: plugins imported, the grid found (name, file or dotted path), ``--set`` applied,
    its seeds and precision replaced when given, and a precision of "auto" decided here, once, for ``device``
    (every worker and launcher then runs the same cells). Sets ``args.suite`` when the command line left it."""
    from bench.grids import get_grid
    from bench.plugins import load_plugins

    args.plugins = load_plugins(getattr(args, "plugin", []))
    grid = get_grid(args.grid).select(getattr(args, "only", [])).with_overrides(getattr(args, "set", []))
    grid = grid.with_seeds(None if _auto(args) else getattr(args, "seeds", None))
    grid = grid.with_protocol(getattr(args, "protocol", None))
    if getattr(args, "suite", "x") is None:
        args.suite = grid.suite or "synthcity"
    if getattr(args, "suite", None):
        from bench.suites import SUITES

        SUITES.get(args.suite)  # an unknown suite is named here, with the close matches
    return grid.with_precision(getattr(args, "precision", None), device)


def _run_spec(args, grid):
    from bench.run_spec import RunOptions, RunSpec

    options = RunOptions(device=args.device, threads=args.threads or 1, val_every=args.val_every, rerun=args.rerun,
                         clean_failed=args.clean_failed, shard=args.shard, eval_batch=args.eval_batch,
                         eval_tile=args.eval_tile, loader_workers=args.loader_workers)
    return RunSpec(grid, args.suite, args.results, _suite_options(args), options,
                   tuple(dict.fromkeys(args.plugins + grid.plugins)))


def cmd_run(args) -> int:
    from bench.suites import build_suite

    grid = _grid(args, args.device)
    build_suite(args.suite, _suite_options(args))  # bad suite options fail here, before any process starts
    code = _run_auto(args, grid) if _auto(args) else _launch(args, grid)
    if args.report:
        print(_render(args, grid))
    return code


def _run_auto(args, grid) -> int:
    """``--seeds auto``: run each look's cells, replay the seed rule over the results, until it is done."""
    from bench.seed_rule import START

    if args.launcher == "submitit" and not args.wait:
        raise BenchError("--seeds auto with --launcher submitit needs --wait: each look decides from the cells of the "
                         "one before")
    for option, given in (("--shard", args.shard), ("--rerun", args.rerun)):
        if given:
            raise BenchError(f"--seeds auto decides from every row's finished cells: drop {option} (to retrain, "
                             "run the first seeds with --seeds 0 1 2 --rerun)")
    t0, before = time.time(), None
    while True:
        plan, seeded = _auto_plan(args, grid)
        if plan.done:
            break
        cells = seeded.cells(args.suite)
        if before == [c.cell_hash() for c in cells]:
            raise BenchError(f"--seeds auto: look {plan.looks_taken + 1} still lacks finished cells after a run; "
                             f"see `python -m bench status --grid {args.grid} --seeds auto --results {args.results}` "
                             "(failed cells: --clean-failed)")
        before = [c.cell_hash() for c in cells]
        _log(f"--seeds auto, look {plan.looks_taken + 1}: {len(cells)} cells (" +
             ("the first 3 seeds of every row" if not plan.looks_taken else
              f"{sum(n > START for n in plan.seeds.values())} rows with more seeds") + ")")
        code = _launch(args, seeded)
        if code:
            return code
    counts = sorted(plan.seeds.values())
    _log(f"--seeds auto: done after {plan.looks_taken} looks in {time.time() - t0:.0f} s: "
         f"{sum(counts)} cell-trainings for {len(counts)} rows ({counts[0]} to {counts[-1]} seeds; a fixed 5 would be "
         f"{5 * len(counts)}); letters at {plan.alpha:.4g}")
    return 0


def _launch(args, grid) -> int:
    """Run the grid's unfinished cells once: submitit, local workers or this process."""
    spec = _run_spec(args, grid)
    if args.launcher == "submitit":
        return _submit(args, spec)
    workers = args.workers
    if workers == 0:
        from bench.results import check_writable

        check_writable(args.results / args.suite)  # one message here rather than one per worker
        workers = _auto_workers(args, spec)
        if workers > 1:
            _log(f"{workers} single-thread workers (one per core and pending cell; --workers 1 --threads N "
                 "for one process)")
    t0 = time.time()
    if workers > 1:
        import os

        from bench.run_spec import launch_workers

        cores = os.cpu_count() or 1
        used = min(workers, cores)
        if used < workers:
            _log(f"--workers {workers} > {cores} cores: using {used} workers")
        code = launch_workers(spec.with_options(threads=args.threads or max(1, cores // used)), used, _log)
        _log(f"grid {grid.name}: workers finished in {time.time() - t0:.0f} s")
        return code
    from bench.run_spec import execute

    before, finished, failed = execute(spec, log=_log)
    _log(f"grid {grid.name}: {before} already done, {finished} finished, {failed} failed in "
         f"{time.time() - t0:.0f} s")
    return 1 if failed else 0


def cmd_exec(args) -> int:
    """A worker: the run specification its parent wrote, executed as the parent would have."""
    from bench.run_spec import execute, read_spec

    spec = read_spec(args.spec)
    before, finished, failed = execute(spec, only=set(args.only) if args.only else None, log=_log)
    _log(f"grid {spec.grid.name}: {before} already done, {finished} finished, {failed} failed")
    return 1 if failed else 0


def _submit(args, spec) -> int:
    from bench.launchers import SlurmOptions, submit_cells

    slurm = SlurmOptions(args.cluster, args.partition, args.timeout_min, args.gpus_per_node, args.cpus_per_task)
    jobs = submit_cells(spec, slurm, log=_log)
    if not args.wait:
        _log(f"follow them with: python -m bench status --grid {args.grid} --suite {spec.suite} --results {args.results}"
             + "".join(f" --plugin {p}" for p in args.plugins) + "".join(f" --set {s}" for s in args.set))
        return 0
    failed = 0
    for job in jobs:
        try:
            job.result()
        except Exception as e:  # noqa: BLE001 - a job's failure is reported, the others are awaited
            failed += 1
            _log(f"job {job.job_id} failed: {str(e).splitlines()[-1] if str(e) else type(e).__name__}")
    return 1 if failed else 0


def _auto_workers(args, spec) -> int:
    """Workers for ``--workers 0``: one single-thread process per core and pending cell on a CPU (threads of one
    process wait for each other, and on a busy machine a 2-thread training step measured 10-20x slower than a
    1-thread one); one process on a GPU, under torchrun, or when --threads is given."""
    import os

    from bench.cell_state import cell_state

    if not args.device.startswith("cpu") or args.threads or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    base = args.results / args.suite
    todo = [c for c in spec.cells() if cell_state(base / c.dirname()).state == "pending" or args.rerun]
    return max(1, min(os.cpu_count() or 1, len(todo)))


def cmd_cityscapes_labels(args) -> int:
    from bench.cityscapes import make_train_ids, validate

    make_train_ids(args.data_root, force=args.force, log=_log, out=args.out)
    counts = validate(args.data_root, _log, args.out)
    _log(f"layout ok: {counts['train']} train / {counts['val']} val images")
    return 0


def cmd_doctor(args) -> int:
    from bench.doctor import diagnose

    grid = _grid(args)
    lines, ok = diagnose(args.suite, _suite_options(args), grid)
    print("\n".join(lines))
    return 0 if ok else 1


def _seeded(args, grid):
    """(the grid at the seeds the command line asks for, the ``--seeds auto`` plan or None)."""
    if not _auto(args):
        return grid, None
    plan, seeded = _auto_plan(args, grid)
    return seeded, plan


def cmd_status(args) -> int:
    from bench.cell_state import cell_state
    grid, plan = _seeded(args, _grid(args))
    cells = grid.cells(args.suite)
    base = args.results / args.suite
    counts: dict[str, int] = {}
    print("| cell | state | progress | detail |\n|---|---|---:|---|")
    for c in cells:
        st = cell_state(base / c.dirname())
        counts[st.state] = counts.get(st.state, 0) + 1
        progress = f"{st.iteration}/{st.iterations}" if st.iteration is not None else ""
        print(f"| {c.slug()} | {st.state} | {progress} | {st.detail[:100]} |")
    print(f"\ngrid {args.grid} on {args.suite} ({base}): " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + ("" if base.is_dir() else f"; {base} does not exist yet: nothing has run there (check --results)"))
    if plan is not None:
        from bench.auto_seeds import describe

        print("\n" + "\n".join(describe(plan, grid, args.suite)))
    return 0


def _render(args, grid=None) -> str:
    from bench.report import read_paper_tables, read_seed_spreads, render_report
    from bench.results import load_results
    from bench.stats import ALPHA

    grid, plan = _seeded(args, grid) if grid else (None, None)
    ids = {c.cell_hash() for c in grid.cells(args.suite)} if grid else None
    title = f"{args.suite}: grid {grid.name}" if grid else f"{args.suite}: all finished cells"
    note = ""
    if plan is not None:
        note = (f"Seeds: `--seeds auto`, 3 to {plan.max_seeds} per row, added while a row's mIoU comparison with the "
                f"group's best row or l1 was undecided ({plan.looks_taken} looks"
                + ("" if plan.done else ", not finished: more cells to run") + f"); letters and intervals at level "
                f"{plan.alpha:.4g}: 5 % split over the {plan.max_seeds - 2} possible looks (Bonferroni), so the "
                "looks do not inflate the error rate.")
    paper = getattr(args, "paper", None)
    if paper is not None and not paper.is_file():
        raise BenchError(f"paper tables {paper} do not exist (expected the csv of results/paper_tables.csv)")
    return render_report(load_results(args.results, args.suite), title, ids, getattr(args, "format", "markdown"),
                         read_paper_tables(paper) if paper else None, ci=getattr(args, "ci", False),
                         n_boot=getattr(args, "resamples", 2000),
                         spreads=read_seed_spreads(args.seed_spread) if getattr(args, "seed_spread", None) else None,
                         alpha=plan.alpha if plan else ALPHA, seeds_note=note)


def _render_claims(args, grid) -> str:
    from bench.claims import check_claims, render_claims
    from bench.results import load_results
    from bench.stats import ALPHA

    if args.format not in ("markdown", "csv"):
        raise BenchError(f"--claims --format {args.format}: the claims table is markdown or csv")
    grid, plan = _seeded(args, grid) if grid else (None, None)
    ids = {c.cell_hash() for c in grid.cells(args.suite)} if grid else None
    alpha = plan.alpha if plan else ALPHA
    df = check_claims(load_results(args.results, args.suite), ids, n_boot=args.resamples, alpha=alpha)
    if args.format == "csv":
        return df.to_csv(index=False)
    title = f"{args.suite}: the paper's claims on " + (f"grid {grid.name}" if grid else "all finished cells")
    return f"## {title}\n\n" + render_claims(df, alpha)


def cmd_report(args) -> int:
    grid = _grid(args) if args.grid else None
    if grid is None:
        from bench.plugins import load_plugins

        if _auto(args) or args.seeds:
            raise BenchError("--seeds selects a grid's cells: add --grid NAME (without it the report takes every "
                             "finished cell of the folder)")
        load_plugins(args.plugin)
        args.suite = args.suite or "synthcity"
    from bench.results import require_results

    require_results(args.results, args.suite)
    if args.claims:
        print(_render_claims(args, grid), end="")
        return 0
    if args.agreement:
        from bench.agreement import agreement_frame, render_agreement
        from bench.metrics import METRICS
        from bench.results import load_results

        METRICS.get(args.agreement)
        results = load_results(args.results, args.suite)
        if grid is not None:  # the grid's cells (at --seeds) and their re-scorings
            ids = {c.cell_hash() for c in _seeded(args, grid)[0].cells(args.suite)}
            results = [r for r in results if r.get("cell_id") in ids or (r.get("source") or {}).get("cell_id") in ids]
        df = agreement_frame(results, args.agreement, args.resamples)
        title = f"{args.suite}" + (f": grid {grid.name}" if grid is not None else "")
        print(df.to_csv(index=False) if args.format == "csv" else render_agreement(df, title), end="")
        return 0
    print(_render(args, grid), end="")
    if args.plots:
        from bench.plots import write_plots
        from bench.results import load_results
        from bench.runner import Context
        from bench.suites import SuiteOptions, build_suite

        ids = {c.cell_hash() for c in _seeded(args, grid)[0].cells(args.suite)} if grid else None
        ctx = Context(build_suite(args.suite, SuiteOptions()), "cpu", _log) if args.suite == "synthcity" else None
        for path in write_plots(load_results(args.results, args.suite), args.plots, ids, ctx):
            _log(f"wrote {path}")
    return 0


def cmd_export(args) -> int:
    from bench.frame import export
    from bench.plugins import load_plugins

    grid = _grid(args) if args.grid else None
    if grid is None:
        load_plugins(args.plugin)
        args.suite = args.suite or "synthcity"
    from bench.results import require_results

    require_results(args.results, args.suite)
    for path in export(args.results, args.out, args.format, grid=_seeded(args, grid)[0] if grid else None,
                       suite=args.suite):
        _log(f"wrote {path}")
    return 0


def cmd_prepare(args) -> int:
    from bench.plugins import load_plugins
    from bench.suites import MIN_CLEAN_MIOU, MIN_NOISY_DROP, build_suite

    load_plugins(args.plugin)  # an evaluator or suite a plugin registers
    args.suite = args.suite or "synthcity"
    suite = build_suite(args.suite, _suite_options(args))
    root = suite.data_root(_log)
    _log(f"data: {root}")
    if args.suite != "synthcity":
        suite.segmenter_files(_log)
        _log("segmenter files found")
        return 0
    if args.only != "segmenter":
        fmeta = suite.prepare_features(force=args.force, log=_log)
        _log(f"embedded feature network: {fmeta['checkpoint']} (sha256 {fmeta['sha256'][:16]}...), "
             f"{fmeta['parameters']:,} parameters; val crop-classification macro F1 {fmeta['val_macro_f1']:.3f}")
    if args.only == "features":
        return 0
    meta = suite.prepare_segmenter(force=args.force, log=_log)
    ckpt, _ = suite.locate_segmenter()
    _log(f"embedded segmenter {suite.evaluator_name}: {ckpt} (sha256 {meta['sha256'][:16]}...)")
    _log(f"clean val mIoU {meta['clean_miou']:.4f} (needs >= {MIN_CLEAN_MIOU}); noisy input at sigma 50: "
         f"{meta['noisy_miou_sigma50']:.4f}, a drop of {meta['noise_drop']:.4f} (needs >= {MIN_NOISY_DROP})")
    if not meta["meets_bar"]:
        raise BenchError(f"the embedded segmenter {suite.evaluator_name} misses the quality bar above: the benchmark "
                         f"could not tell objectives apart; run `{suite.prepare_command}` after fixing the evaluator")
    return 0


def _same_name(recorded, given) -> bool:
    """A baseline's suite or grid and the one checked: the same name, or the same grid file by another path."""
    if str(recorded) == str(given):
        return True
    a, b = Path(str(recorded)), Path(str(given))
    return a.suffix == ".toml" and b.suffix == ".toml" and a.resolve() == b.resolve()


def cmd_check(args) -> int:
    from bench.base.atomic import atomic_write_json
    from bench.check import (
        FAILING,
        compare,
        compare_fingerprints,
        default_tolerances,
        fingerprints_from_results,
        read_baseline,
        render_findings,
        values_from_results,
    )
    from bench.results import load_results, require_results

    grid = _grid(args)  # first: the plugins it names may register the baseline's metrics
    baseline = None if args.update_baseline else read_baseline(args.baseline)
    from bench.metrics import DEFAULT_METRICS, METRICS

    tolerances = {**default_tolerances(DEFAULT_METRICS), **(baseline or {}).get("tolerances", {})}
    for item in args.tolerance:
        metric, _, tol = item.partition("=")
        try:
            value = float(tol)
        except ValueError:
            value = float("nan")
        if metric not in METRICS or ":" in metric or not math.isfinite(value) or value < 0:
            raise BenchError(f"--tolerance {item!r}: expected METRIC=TOL with METRIC in {', '.join(METRICS)} "
                             "and TOL a finite number >= 0")
        tolerances[metric] = value
    require_results(args.results, args.suite)
    ids = {c.cell_hash() for c in _seeded(args, grid)[0].cells(args.suite)}
    results = load_results(args.results, args.suite)
    current = values_from_results(results, ids)
    prints = fingerprints_from_results(results, ids)
    if not current:
        raise BenchError(f"no finished cells of grid {args.grid} under {args.results}/{args.suite}; run it first")
    if args.update_baseline:
        bad = sorted(k for k, v in current.items() if not math.isfinite(v))
        if bad:
            raise BenchError(f"not writing baseline {args.baseline}: {len(bad)} values are not finite ({bad[0]} = "
                             f"{current[bad[0]]}); a baseline with NaN would let any value pass")
        scored = sorted({k.rsplit("|", 1)[1] for k in current})
        tolerances = {**default_tolerances(scored), **tolerances}
        data = {"suite": args.suite, "grid": args.grid, "tolerances": tolerances, "values": current,
                **({"fingerprints": prints} if prints else {})}
        if args.instrument is not False:
            from bench.instrument import build_section
            from bench.suites import SuiteOptions, build_suite

            data["instrument"] = build_section(build_suite(args.suite, SuiteOptions()),
                                               load_results(args.results, args.suite), args.results, args.baseline,
                                               ids, log=_log)
        try:
            atomic_write_json(args.baseline, data)
        except OSError as e:
            raise BenchError(f"cannot write baseline {args.baseline} ({e.strerror or e}): pass a writable "
                             "--baseline path") from None
        _log(f"baseline {args.baseline} written ({len(current)} values"
             + (f", {len(data['instrument']['values'])} instrument values)" if "instrument" in data else ")"))
        return 0
    failed = False
    for field, wanted in (("suite", args.suite), ("grid", args.grid)):
        if baseline.get(field) is not None and not _same_name(baseline[field], wanted):
            print(f"Baseline: written for {field} {baseline[field]!r}, checked against {field} {wanted!r}: the check "
                  f"fails (pass --{field} {baseline[field]} or another baseline).")
            failed = True
    if baseline.get("fingerprints"):  # before the values: other weights explain any difference below
        lines, reproduced = compare_fingerprints(prints, baseline["fingerprints"])
        print("\n".join(lines))
        failed = not reproduced
    findings = compare(current, baseline["values"], tolerances)
    print(render_findings(findings, tolerances))
    failed = failed or not findings or any(f.status in FAILING for f in findings)
    section = baseline.get("instrument")
    if section is None and args.instrument:
        print("Instrument: --instrument was asked for, but the baseline has no instrument section: the check fails.")
        failed = True
    if section and args.instrument is not False:
        from bench.instrument import compare_data, data_digests, measure
        from bench.runner import Context
        from bench.suites import SuiteOptions, build_suite

        ctx = Context(build_suite(baseline.get("suite", args.suite), SuiteOptions()), "cpu", _log)
        measured = measure(ctx, section["frozen"], args.baseline, tuple(section["sigmas"]), section["seed"])
        found = compare(measured, section["values"], section["tolerances"])
        print("Instrument (the measuring chain on fixed inputs, no training):")
        print(render_findings(found, section["tolerances"]))
        recorded = section.get("data")
        data_problems = compare_data(recorded, data_digests(ctx)) if recorded else []
        for line in data_problems:
            print(f"Data: {line}")
        if recorded and not data_problems:
            print("Data: the train and val splits are the baseline's, pixel for pixel.")
        # an 'improvement' is a change; no values at all is a check of nothing
        failed = failed or bool(data_problems) or not found or any(f.status != "ok" for f in found)
    return 1 if failed else 0


def _score_settings(args):
    """(grid, test settings, suite) of `bench score` / `bench noisy`: the grid's levels, degradation and protocol."""
    from bench.scoring import ScoreSettings
    from bench.suites import build_suite

    grid = _grid(args)
    precision = getattr(args, "restore_precision", None) or "fp32"  # bench score --model --precision
    return (grid, ScoreSettings.of_grid(grid, args.suite, args.seed, precision),
            build_suite(args.suite, _suite_options(args)))


def cmd_score(args) -> int:
    import json

    from bench.base.atomic import sha256_file
    from bench.runner import Context
    from bench.scoring import RestoredFolder, load_model, restore_fn, score

    if not args.rescore and (args.only or args.seeds or args.max_seeds is not None):
        raise BenchError("--only and --seeds choose the cells of --rescore: add --rescore, or drop them")
    grid, settings, suite = _score_settings(args)
    if args.model is None and args.model_params != "{}":
        raise BenchError("--model-params goes with --model")
    if args.noisy is not None and args.restored is None:
        raise BenchError("--noisy goes with --restored (it checks that the outputs were made from those inputs)")
    if args.cell is not None and (args.seed != 0 or any(not s.startswith("metrics=") for s in args.set)):
        raise BenchError("--cell scores at the cell's own levels, seed and degradation: of --set only metrics=[...] "
                         "applies, and --seed does not")
    if args.rescore and (args.seed != 0 or args.name):
        raise BenchError("--rescore scores each cell at its own seed and under its own name: drop --seed / --name")
    if args.weights is not None and args.model is None:
        raise BenchError("--weights goes with --model (--restored and --cell bring their own)")
    if args.restore_precision is not None and args.model is None:
        raise BenchError("--precision goes with --model (--cell and --rescore restore in the cell's own precision; "
                         "--restored outputs are already made)")
    if args.rescore:
        return _rescore(args, grid, suite)
    if args.model is not None:
        if args.weights is None:
            raise BenchError("--model needs --weights CKPT (the state dict to score)")
        try:
            params = json.loads(args.model_params)
        except json.JSONDecodeError as e:
            raise BenchError(f"--model-params {args.model_params!r} is not JSON ({e.msg})") from None
        if not isinstance(params, dict):
            raise BenchError(f"--model-params {args.model_params!r}: expected a JSON object of keyword arguments")
        model = settings.prepared(load_model(args.model, params, args.weights))
        source = {"kind": "model", "model": args.model, "params": params, "weights_sha256": sha256_file(args.weights)}
        name = args.name or args.model.rpartition(":")[2] or args.model
    results = args.results or default_results_root()
    if args.cell is not None:
        from bench.scoring import from_cell

        model, settings, source, cell_name = from_cell(args.cell)
        name = args.name or cell_name
        results = args.results or Path(args.cell).resolve().parent.parent  # beside the cell: <results>/<suite>/<cell>
    ctx = Context(suite, args.device, _log, metrics=grid.metrics)
    if args.model is not None or args.cell is not None:
        restore = restore_fn(model.to(ctx.device))
    else:
        from bench.scoring import check_noisy_manifest

        inputs = (check_noisy_manifest(args.noisy, settings, suite.name) if args.noisy is not None
                  else "not verified (no --noisy)")
        restore = RestoredFolder(args.restored, ctx.val, settings.test_sigmas)
        source = {"kind": "restored", "folder": str(args.restored), "sha256": restore.fingerprint(),
                  "inputs_manifest_sha256": inputs}
        name = args.name or Path(args.restored).resolve().name
    path = score(ctx, restore, settings, name, source, results)
    _print_scored(path, name)
    return 0


def _print_scored(path: Path, name: str) -> None:
    from bench.results import read_result, scored_metrics

    r = read_result(path)
    for level, m in r["metrics"].items():
        print(f"{name} σ={level}: " + ", ".join(f"{k} {m[k]:.6g}" for k in scored_metrics(r)))
    _log(f"wrote {path}")


def _rescore(args, grid, suite) -> int:
    """``bench score --rescore``: every finished cell of the grid in --results, scored again from its saved weights
    under this command's evaluator and metrics (no training); cells already re-scored so are skipped."""
    from bench.results import RESULT_FILE, read_result
    from bench.runner import Context
    from bench.scoring import from_cell, restore_fn, score

    results = args.results or default_results_root()
    grid, _ = _seeded(args, grid)
    base = results / suite.name
    folders = [base / c.dirname() for c in grid.cells(suite.name)]
    done = [f for f in folders if (f / RESULT_FILE).is_file()]
    if not done:
        raise BenchError(f"no finished cell of grid {args.grid} under {base}: run it first (bench run --grid "
                         f"{args.grid} --results {results}), or point --results at its folder")
    _log(f"re-scoring {len(done)} finished cells of grid {args.grid} ({len(folders) - len(done)} not finished, "
         f"skipped) under {suite.name}'s evaluator {getattr(suite, 'evaluator_name', '') or 'given'}")
    ctx = Context(suite, args.device, _log, metrics=grid.metrics)
    t0, scored, skipped = time.time(), 0, 0
    for folder in done:
        model, settings, source, name = from_cell(folder)
        path = score(ctx, restore_fn(model.to(ctx.device)), settings, name, source, results, skip_existing=True)
        if path is None:
            skipped += 1
            continue
        scored += 1
        r = read_result(path)
        _log(f"[{scored + skipped}/{len(done)}] {name}: " + ", ".join(
            f"σ{level} mIoU {m['miou']:.4f}" for level, m in r["metrics"].items() if "miou" in m))
    _log(f"re-scored {scored} cells ({skipped} already were) in {time.time() - t0:.0f} s, no training; "
         f"`bench report --agreement --results {results}` compares the evaluators' rankings")
    return 0


def cmd_noisy(args) -> int:
    from bench.degradations import build_degradation
    from bench.paths import cache_root
    from bench.scoring import noisy_identity, write_noisy
    from bench.streaming import decoded

    grid, settings, suite = _score_settings(args)
    if settings.protocol != "ours":
        raise BenchError("bench noisy writes the inputs of our protocol (noise fixed per image id, level and seed); "
                         "--protocol authors draws the authors' noise instead")
    root = suite.data_root(_log)
    val = decoded(root, "val", cache_root() / "decoded", _log, suite.label_root)
    manifest = write_noisy(args.out, val, settings.test_sigmas, settings.seed,
                           build_degradation(*settings.scored_degradation),
                           {**noisy_identity(settings, suite.name), "grid": grid.name})
    _log(f"wrote {len(val)} x {len(settings.test_sigmas)} inputs and {manifest}")
    return 0


def cmd_list(args) -> int:
    from bench.grids import GRIDS, get_grid
    from bench.plugins import load_plugins
    from bench.suites import SUITES
    from losses import OBJECTIVES
    from models import BACKBONES

    load_plugins(args.plugin)
    print("grids:")
    for name in GRIDS:
        g = get_grid(name)
        print(f"  {name:14s} {len(g.cells('synthcity')):3d} cells  {g.description}")
    print("backbones:")
    for name in BACKBONES:
        print(f"  {name:14s} {BACKBONES.get(name).description}")
    print("objectives:")
    for name in OBJECTIVES:
        print(f"  {name:14s} {OBJECTIVES.get(name).description}")
    from bench.metrics import DEFAULT_METRICS, METRICS

    print(f"metrics (a grid's `metrics`; default {', '.join(DEFAULT_METRICS)}):")
    for name in METRICS:
        m = METRICS[name]
        print(f"  {name:20s} {'↑' if m.higher_is_better else '↓'} {m.kind:4s} {m.description}")
    from bench.degradations import DEGRADATIONS

    print("degradations (a grid's [train] degradation, test_degradation; levels on the 0-255 scale):")
    for name in DEGRADATIONS:
        print(f"  {name:20s} {DEGRADATIONS[name].description}")
    from bench.suites import EMBEDDED_EVALUATORS, MAIN_EVALUATOR

    print(f"embedded evaluators (synthcity's --evaluator; default {MAIN_EVALUATOR}):")
    for name in EMBEDDED_EVALUATORS:
        print(f"  {name:20s} {EMBEDDED_EVALUATORS[name].description}")
    print("suites: " + ", ".join(SUITES.names()))
    return 0


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    import os

    # Before torch starts OpenMP: threads that wait sleep instead of spinning, so a multi-thread process on a busy
    # machine does not spin against the other jobs (measured 0.42x the spinning default's time when busy).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot print σ or ± gets "?" instead of a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    try:
        return {"run": cmd_run, "report": cmd_report, "prepare": cmd_prepare, "check": cmd_check,
                "list": cmd_list, "status": cmd_status, "cityscapes-labels": cmd_cityscapes_labels,
                "doctor": cmd_doctor, "exec": cmd_exec, "export": cmd_export, "score": cmd_score,
                "noisy": cmd_noisy}[args.command](args)
    except BenchError as e:  # unknown names (UnknownNameError) included
        from bench.base.errors import Interrupted

        if isinstance(e, Interrupted):
            print(f"interrupted: {e}", file=sys.stderr)
            return 128 + e.signum
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished cells are saved (their result.json); a cell in training resumes from its last "
              "checkpoint on the next `bench run`", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - not an expected failure: keep the traceback, ask for a report
        import traceback

        traceback.print_exc()
        print("error: an unexpected failure (above) - this is a bug in d2sm-bench unless the message says otherwise; "
              "please report it with the command line and the traceback", file=sys.stderr)
        return 3
