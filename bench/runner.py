"""Run a grid: prepare the suite once, then train and score every cell that is not done.

A cell is done when its ``result.json`` exists (written atomically, last). A killed run resumes
each unfinished cell from its training checkpoint; a cell that fails (NaN loss, exception) gets a
``failed.json`` with the reason and the others go on.
"""
from __future__ import annotations

import dataclasses
import json
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from bench import distributed
from bench.base.atomic import atomic_write_json, sha256_file
from bench.base.errors import BenchError
from bench.cell_state import CHECKPOINT_FILE, CHECKPOINT_NOTE, FAILED_FILE, CellLock, cell_state
from bench.config import CellConfig, is_paper_noise
from bench.environment import environment, peak_rss_mb
from bench.evaluate import evaluate, identity_restore, metric_descriptions
from bench.grids import Grid
from bench.metrics import DEFAULT_METRICS, get_metric
from bench.precision import strict_fp32
from bench.progress import bar
from bench.results import RESULT_FILE, CellResult, ReferenceResult, check_writable, write_result
from bench.schedule import longest_first
from bench.suites import Suite
from bench.train import Interrupted, build_for_training, train
from losses import OBJECTIVES, build_objective
from losses.registry import Resources, objective_needs, objective_params
from models import BACKBONES


def reference_dirname(cells: list[CellConfig]) -> str:
    """The folder of the reference rows for these test settings (sigmas, seed)."""
    import hashlib
    import json

    extra = {"protocol": cells[0].protocol} if cells[0].protocol != "ours" else {}
    name, params = cells[0].scored_degradation
    if not is_paper_noise(name, params):  # Gaussian reference rows keep the folder they had
        extra["degradation"] = [name, [list(p) for p in params]]
    key = json.dumps({"sigmas": cells[0].test_sigmas, "seed": cells[0].seed, **extra}, sort_keys=True)
    return f"reference-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class Context:
    """What every cell of a run shares: the suite's data (in memory), its segmenter, its weights."""

    def __init__(self, suite: Suite, device: str, log: Callable[[str], None], val_every: int = 0,
                 eval_batch: int | None = None, eval_tile: int = 0, loader_workers: int | None = None,
                 metrics: tuple[str, ...] = DEFAULT_METRICS) -> None:
        self.suite, self.device, self.log, self.val_every = suite, torch.device(device), log, val_every
        self.metrics = tuple(metrics)
        self.loader_workers = loader_workers
        strict_fp32()
        self.eval = {"batch": eval_batch, "tile": eval_tile}  # restoration memory: images per batch, tile side
        root = suite.data_root(log)
        self.segmenter = suite.build_segmenter(device, log)
        self.segmenter.probe()  # compiled-op or shape problems surface here, before any training
        seg = self.segmenter
        self.weights = {"segmenter": {"config": seg.config_path, "checkpoint": seg.checkpoint_path,
                                      "sha256": seg.checkpoint_sha256}}
        from bench.paths import cache_root
        from bench.streaming import decoded

        # train and val streamed from a decoded on-disk cache: memory does not grow with the number of images
        t0 = time.time()
        cache, labels = cache_root() / "decoded", suite.label_root
        self.val = decoded(root, "val", cache, log, labels)
        self.val_curve_images = decoded(root, "val", cache, log, labels, limit=VAL_CURVE_IMAGES)  # curve subset
        train_split = decoded(root, "train", cache, log, labels)
        self.train_images, self.train_labels = train_split.images, train_split.labels
        log(f"{suite.name}: {len(train_split)} train / {len(self.val)} val images ({time.time() - t0:.1f} s to open)")
        from bench.identity import evaluation_identity

        self.evaluation = evaluation_identity(root, {"train": train_split.samples, "val": self.val.samples}, seg)
        self.resources = Resources(features=self._features, lpips=self._lpips, segmenter=self._frozen_segmenter)

    def score(self, restore, cell_or_settings, amp: bool = False, val=None, sigmas=None,
              metrics: tuple[str, ...] | None = None) -> dict:
        """``bench.evaluate.evaluate`` of ``restore`` on this run's val images, metrics and resources, at the test
        settings of a cell (or reference rows): its sigmas, seed and protocol."""
        from bench.degradations import build_degradation

        c = cell_or_settings
        return evaluate(restore, self.val if val is None else val, c.test_sigmas if sigmas is None else sigmas,
                        c.seed, self.segmenter, self.device, amp=amp, protocol=c.protocol,
                        metrics=self.metrics if metrics is None else metrics, resources=self.resources,
                        degradation=build_degradation(*c.scored_degradation), **self.eval)

    def metric_info(self, metrics: tuple[str, ...] | None = None) -> dict[str, str]:
        return metric_descriptions(self.metrics if metrics is None else metrics, self.resources, self.device)

    def _features(self):
        path, width = self.suite.feature_files(self.log)
        self.weights["features"] = {"checkpoint": str(path), "sha256": sha256_file(path), "width": width}
        return self.suite.build_features(str(self.device), self.log)

    def _lpips(self):
        net = self.suite.build_lpips(str(self.device), self.log)
        self.weights["lpips"] = {"description": net.description}
        return net

    def _frozen_segmenter(self):
        return self.segmenter.freeze()

    def weights_for(self, objective: str) -> dict:
        """The weights a cell's numbers depend on: the evaluator's, and the loss networks its objective used."""
        used = set(objective_needs(objective)) | ({"lpips"} if "lpips" in self.metrics else set())
        return {k: v for k, v in self.weights.items() if k == "segmenter" or k in used}


VAL_CURVE_IMAGES, VAL_CURVE_SIGMA = 16, 50.0


def _curve_point(ctx: Context, model, cell: CellConfig) -> dict:
    """PSNR and mIoU at sigma 50 on the first val images: one point of the validation curve (Figure 5)."""
    m = ctx.score(model.restore, cell, amp=cell.train.bf16, val=ctx.val_curve_images, sigmas=(VAL_CURVE_SIGMA,),
                  metrics=("psnr", "miou"))[f"{VAL_CURVE_SIGMA:g}"]
    return {"psnr": m["psnr"], "miou": m["miou"]}


def validate(cells: list[CellConfig]) -> None:
    """Fail before any work on unknown backbone, objective or degradation names, or on a grid whose cells are scored
    under several degradations (its reference rows would be of one of them)."""
    from bench.degradations import build_degradation

    for c in cells:
        BACKBONES.get(c.backbone)
        OBJECTIVES.get(c.objective)
        build_degradation(*c.scored_degradation)
    scored = sorted({f"{n}{dict(p) or ''}" for n, p in (c.scored_degradation for c in cells)})
    if len(scored) > 1:
        raise BenchError(f"this grid's cells are scored under {len(scored)} degradations ({', '.join(scored)}): a "
                         "grid scores under one; set test_degradation, or split it into one grid per degradation")


def run_reference(ctx: Context, cells: list[CellConfig], folder: Path) -> None:
    """The reference rows at the cells' test settings, scored with the run's metrics (again, when a finished file
    lacks one of them: no training is involved)."""
    if (folder / RESULT_FILE).is_file():
        from bench.results import read_result, scored_metrics

        if set(ctx.metrics) <= set(scored_metrics(read_result(folder / RESULT_FILE))):
            return
        ctx.log(f"reference rows: scored again for the metrics {', '.join(ctx.metrics)}")
    c = cells[0]
    t0 = time.time()
    noisy = ctx.score(identity_restore, c)
    clean = ctx.score(None, c, sigmas=())["clean"]
    write_result(folder, ReferenceResult(
        config={"suite": c.suite, "test_sigmas": list(c.test_sigmas), "seed": c.seed, "protocol": c.protocol,
                **({"degradation": [c.scored_degradation[0], dict(c.scored_degradation[1])]}
                   if not is_paper_noise(*c.scored_degradation) else {})},
        metrics={"noisy input": noisy, "clean input": {f"{s:g}": clean for s in c.test_sigmas}},
        weights=ctx.weights, env=environment(str(ctx.device)), created=_now(), eval_seconds=round(time.time() - t0, 2),
        evaluation=ctx.evaluation, metric_info=ctx.metric_info()))
    ctx.log(f"reference rows written ({time.time() - t0:.1f} s)")


def run_cell(ctx: Context, cell: CellConfig, folder: Path) -> dict | None:
    """Train and score one cell; under torchrun every rank trains, rank 0 alone scores and writes (others: None)."""
    folder.mkdir(parents=True, exist_ok=True)
    main = distributed.is_main()
    log_file = open(folder / ("log.txt" if main else f"log.rank{distributed.rank()}.txt"), "a")

    def log(msg: str) -> None:
        log_file.write(f"{_now()} {msg}\n")
        log_file.flush()

    try:
        model = build_for_training(cell.backbone, dict(cell.backbone_kwargs), cell.train, cell.seed)
        objective = build_objective(cell.objective, ctx.resources, **dict(cell.objective_kwargs))
        if main:
            atomic_write_json(folder / "config.json", cell.to_dict())
        with bar(cell.train.iterations, f"{cell.slug()} train", position=1) as pb:
            done = [0]

            def tick(i: int) -> None:
                pb.update(i - done[0])
                done[0] = i

            summary = train(model, objective, ctx.train_images, cell.train, cell.seed, folder / CHECKPOINT_FILE,
                            ctx.device, log=log, labels=ctx.train_labels, progress=tick,
                            validate=lambda scored: _curve_point(ctx, scored, cell), val_every=ctx.val_every,
                            loader_workers=ctx.loader_workers)
        if not main:
            return None
        t0 = time.time()
        metrics = ctx.score(model.restore, cell, amp=cell.train.bf16)
        from bench.plugins import loaded

        result = CellResult(
            cell_id=cell.cell_hash(), slug=cell.slug(), label=cell.label(), config=cell.to_dict(), metrics=metrics,
            train=summary, objective_params=objective_params(cell.objective, **dict(cell.objective_kwargs)),
            seed=cell.seed, precision=cell.train.precision, weights=ctx.weights_for(cell.objective),
            env=environment(str(ctx.device)), created=_now(), eval_seconds=round(time.time() - t0, 2),
            parameters=sum(p.numel() for p in model.parameters()), peak_rss_mb=peak_rss_mb(),
            run={"val_every": ctx.val_every, "plugins": list(loaded()), "eval": ctx.eval}, evaluation=ctx.evaluation,
            metric_info=ctx.metric_info())
        write_result(folder, result)
        (folder / FAILED_FILE).unlink(missing_ok=True)
        log("done")
        return json.loads(json.dumps(dataclasses.asdict(result)))
    finally:
        log_file.close()


def add_metrics(ctx: Context, cell: CellConfig, folder: Path) -> list[str]:
    """Score a finished cell with the run's metrics it lacks, from its saved weights (no training), and add them to
    its ``result.json`` (atomically; the values it holds are kept as they are). Returns the metrics added."""
    from bench.results import read_result, scored_metrics
    from bench.trained import load_trained_denoiser

    result = read_result(folder / RESULT_FILE)
    missing = tuple(m for m in ctx.metrics if m not in scored_metrics(result))
    if not missing:
        return []
    model = load_trained_denoiser(result["config"], folder / CHECKPOINT_FILE).to(ctx.device)
    t0 = time.time()
    added = ctx.score(model.restore, cell, amp=cell.train.bf16, metrics=missing)
    metrics = result["metrics"]
    for sigma, new in added.items():
        old = metrics.get(sigma)
        if old is None or old.get("per_image", {}).get("ids") != new["per_image"]["ids"]:
            raise BenchError(f"{folder / RESULT_FILE} was scored on other val images than this run's (sigma {sigma}):"
                             " its metrics cannot be completed; use another --results folder")
        per_image = {**new.pop("per_image"), **old["per_image"]}
        new.pop("seconds", None)
        metrics[sigma] = {**new, **old, "per_image": per_image}
    fields = {f.name for f in dataclasses.fields(CellResult)}
    data = {k: v for k, v in result.items() if k in fields}
    data["metrics"], data["metric_info"] = metrics, {**result["metric_info"], **ctx.metric_info(missing)}
    data["weights"] = {**result["weights"], **ctx.weights_for(cell.objective)}
    data["eval_seconds"] = round(float(result.get("eval_seconds", 0.0)) + time.time() - t0, 2)
    write_result(folder, CellResult(**data))
    return list(missing)


def select_shard(cells: list[CellConfig], shard: tuple[int, int] | None) -> list[CellConfig]:
    """Cells ``i, i + n, i + 2n, ...`` of the grid for ``shard = (i, n)`` (job arrays)."""
    if shard is None:
        return cells
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise BenchError(f"--shard {i}/{n}: expected i/n with 0 <= i < n")
    return cells[i::n]


def reset_cell_files(folder: Path, names: tuple[str, ...]) -> None:
    """Delete these files of a cell's folder (those that exist)."""
    for name in names:
        (folder / name).unlink(missing_ok=True)


def run_grid(grid: Grid, suite: Suite, results_root: Path, device: str = "cpu",
             log: Callable[[str], None] = print, rerun: bool = False, clean_failed: bool = False,
             shard: tuple[int, int] | None = None, only: set[str] | None = None, val_every: int = 0,
             eval_batch: int | None = None, eval_tile: int = 0, loader_workers: int | None = None
             ) -> tuple[int, int, int]:
    """Train and score the grid's pending cells; returns (done before, finished now, failed).

    Each cell runs under its lock, so any number of processes (workers, job-array shards, a second
    ``bench run`` by mistake) can share a results folder and every cell still runs exactly once.
    Failed cells stay failed until ``clean_failed``; ``rerun`` recomputes finished cells from scratch.
    """
    cells = select_shard(grid.cells(suite.name), shard)
    if only is not None:
        cells = [c for c in cells if c.cell_hash() in only]
        if not cells:
            raise BenchError(f"no cell of grid {grid.name} has id {sorted(only)[0]}")
    validate(cells)
    base = results_root / suite.name
    check_writable(base)
    states = {c: cell_state(base / c.dirname()) for c in cells}
    if clean_failed:
        for c, st in states.items():
            if st.state == "failed":
                reset_cell_files(base / c.dirname(), (FAILED_FILE,))
                states[c] = cell_state(base / c.dirname())
    done = [c for c in cells if states[c].state == "done"]
    corrupt = [c for c in cells if states[c].state == "corrupt"]
    failed_before = [c for c in cells if states[c].state == "failed"]
    todo = [c for c in cells if states[c].state == "pending" or (rerun and states[c].state in ("done", "failed"))]
    for c in corrupt:
        log(f"{c.slug()}: {states[c].detail}")
    for c in failed_before:
        log(f"{c.slug()}: failed earlier ({states[c].detail[:120]}); --clean-failed to retry it")
    ref = base / reference_dirname(cells)
    log(f"grid {grid.name} on {suite.name}: {len(cells)} cells, {len(done)} done, {len(todo)} to run"
        + (f", {len(failed_before)} failed" if failed_before else "") + f"; results in {base}")
    ctx = Context(suite, device, log, val_every, eval_batch, eval_tile, loader_workers, grid.metrics)
    from bench.identity import check_folder

    if rerun:  # recomputed: only the reference rows must be of this evaluation, or measured again
        from bench.identity import differs
        from bench.results import read_result

        if (ref / RESULT_FILE).is_file() and differs(read_result(ref / RESULT_FILE), ctx.evaluation):
            reset_cell_files(ref, (RESULT_FILE,))
    else:  # numbers made with another evaluator or data are never reused
        check_folder([ref] + [base / c.dirname() for c in done], ctx.evaluation)
    if distributed.is_main():
        with CellLock(ref) as lock:
            if lock.acquire():
                run_reference(ctx, cells, ref)
        for c in done:  # finished before the grid asked for a metric: scored with it from the saved weights
            with CellLock(base / c.dirname()) as lock:
                if lock.acquire():
                    added = add_metrics(ctx, c, base / c.dirname())
                    if added:
                        log(f"{c.slug()}: scored with {', '.join(added)} from its saved weights (no training)")
    if not todo:
        return len(done), 0, len(corrupt) + len(failed_before)
    if distributed.world() == 1:  # under torchrun every rank must take the same cells in the same order
        todo = longest_first(todo, ctx.device, log)
    finished = failed = skipped = 0
    with bar(len(todo), f"grid {grid.name}", unit="cell") as pb:
        for cell in todo:
            folder = base / cell.dirname()
            with CellLock(folder) as lock:
                go = True
                if distributed.is_main():  # under torchrun rank 0 decides, the other ranks follow
                    if not lock.acquire():
                        go = False
                        skipped += 1
                        log(f"{cell.slug()}: running in another process; skipped")
                    elif rerun and states[cell].state in ("done", "failed"):
                        reset_cell_files(folder, (RESULT_FILE, FAILED_FILE, CHECKPOINT_FILE, CHECKPOINT_NOTE))
                    elif cell_state(folder).state == "done":  # finished by another process since we looked
                        go = False
                if not distributed.broadcast(go):
                    pb.update(1)
                    continue
                t0 = time.time()
                try:
                    r = run_cell(ctx, cell, folder)
                    distributed.barrier()
                    if r is None:  # a follower rank under torchrun
                        continue
                    finished += 1
                    m = r["metrics"]
                    log(f"[{finished + failed}/{len(todo)}] {cell.slug()}: " + ", ".join(
                        f"s{k} " + " / ".join(f"{get_metric(n).label} {v[n]:.{get_metric(n).digits}f}"
                                              for n in ctx.metrics) for k, v in m.items())
                        + f" ({time.time() - t0:.0f} s)")
                except Interrupted:
                    raise  # not the cell's failure: its checkpoint is written, the next run resumes it
                except (BenchError, RuntimeError, ValueError) as e:
                    failed += 1
                    if distributed.is_main():
                        atomic_write_json(folder / FAILED_FILE, {"error": f"{type(e).__name__}: {e}",
                                                                 "traceback": traceback.format_exc(), "created": _now()})
                    log(f"[{finished + failed}/{len(todo)}] {cell.slug()} FAILED: {e}")
            pb.update(1)
    return len(done), finished, failed + len(corrupt) + len(failed_before)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
