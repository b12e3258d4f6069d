"""One run specification, executed identically by every launcher: local, --workers, submitit."""
import json
import sys
from pathlib import Path

import pytest

from bench.results import load_results

DRIVER_DIR = Path(__file__).parent
VOLATILE = {"created", "eval_seconds", "seconds", "peak_rss_mb", "_path"}


@pytest.fixture(scope="module")
def tiny_spec():
    """A one-cell spec on the tiny suite with non-default options: validation curve, 2 threads, an override."""
    sys.path.insert(0, str(DRIVER_DIR))
    import grid_driver

    from bench.grids import Grid, product
    from bench.run_spec import RunOptions, RunSpec
    from bench.suites import SuiteOptions
    from seg_eval.train_embedded import SegTrainSpec

    grid = Grid("parity", "test", product(("ffdnet_small",), ("ssim",)), test_sigmas=(25.0,),
                train={"synthcity": grid_driver.TRAIN}).with_overrides(["objective.weight=0.5", "train.lr=0.002"])
    opts = SuiteOptions(synthcity=grid_driver.TINY, seg_train=SegTrainSpec(iterations=4, batch=2, crop=64))
    grid_driver.suite().segmenter_files(lambda *_: None)  # data and evaluator once, before processes share them
    return RunSpec(grid, "synthcity", Path("unset"), opts, RunOptions(threads=2, val_every=10))


def _stable(obj):
    """A result without the fields that measure time or memory."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _only_cell(results: Path) -> dict:
    cells = [r for r in load_results(results, "synthcity") if r["kind"] == "cell"]
    assert len(cells) == 1
    return _stable(cells[0])


def test_every_launcher_runs_the_same_spec_to_the_same_result(tmp_path, tiny_spec):
    import dataclasses

    from bench.launchers import SlurmOptions, submit_cells
    from bench.run_spec import execute, launch_workers, read_spec

    local = dataclasses.replace(tiny_spec, results=tmp_path / "local")
    assert execute(local, log=lambda *_: None) == (0, 1, 0)
    reference = _only_cell(local.results)
    assert reference["run"]["val_every"] == 10 and len(reference["train"]["curve"]) == 3
    assert reference["env"]["torch_threads"] == 2 and reference["objective_params"]["weight"] == 0.5
    assert reference["config"]["train"]["lr"] == 0.002 and reference["label"] == "ssim (weight=0.5)"

    workers = dataclasses.replace(tiny_spec, results=tmp_path / "workers")
    assert launch_workers(workers, 2, log=lambda *_: None) == 0
    assert _only_cell(workers.results) == reference
    spec_file = next((workers.results / "_specs").glob("spec-*.json"))
    assert read_spec(spec_file) == workers  # what the workers ran is what the parent described

    jobs_spec = dataclasses.replace(tiny_spec, results=tmp_path / "submitit")
    jobs = submit_cells(jobs_spec, SlurmOptions(cluster="local", timeout_min=5), log=lambda *_: None)
    assert [j.result()["finished"] for j in jobs] == [1]
    assert _only_cell(jobs_spec.results) == reference
    assert submit_cells(jobs_spec, SlurmOptions(cluster="local"), log=lambda *_: None) == []  # nothing left


def test_rerun_is_applied_once_by_the_parent(tmp_path, tiny_spec):
    import dataclasses

    from bench.run_spec import execute, reset_once

    spec = dataclasses.replace(tiny_spec, results=tmp_path)
    execute(spec, log=lambda *_: None)
    first = load_results(tmp_path, "synthcity")
    job = reset_once(spec.with_options(rerun=True))
    assert not job.options.rerun and len(load_results(tmp_path, "synthcity")) == len(first) - 1  # the cell reset
    assert execute(job, log=lambda *_: None) == (0, 1, 0)


def test_spec_round_trips_through_json(tiny_spec):
    from bench.run_spec import spec_from_dict

    spec = tiny_spec.with_options(shard=(1, 3), rerun=True)
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.key() == spec.key()
    assert [c.cell_hash() for c in again.cells()] == [c.cell_hash() for c in spec.cells()]


def test_a_missing_device_is_reported_where_the_job_runs(tmp_path, tiny_spec):
    import dataclasses

    import torch

    from bench.base.errors import BenchError
    from bench.run_spec import execute

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    spec = dataclasses.replace(tiny_spec, results=tmp_path).with_options(device="cuda")
    assert spec.to_dict()["options"]["device"] == "cuda"  # describing (submitting) it needs no GPU
    with pytest.raises(BenchError, match="no CUDA device on"):
        execute(spec, log=lambda *_: None)


def test_the_example_plugin_runs_in_submitit_jobs(tmp_path, tiny_spec):
    """The user's plugin files reach the jobs through the spec: a job imports them before building cells."""
    import dataclasses

    from bench.grids import get_grid
    from bench.launchers import SlurmOptions, submit_cells

    example = Path(__file__).resolve().parents[1] / "examples" / "grid.toml"
    grid = get_grid(str(example)).with_overrides(["train.iterations=6", "train.batch=2", "train.crop=32",
                                                  "train.checkpoint_every=3", "backbone.depth=3", "test_sigmas=[25]"])
    spec = dataclasses.replace(tiny_spec, grid=grid, results=tmp_path, plugins=grid.plugins,
                               options=dataclasses.replace(tiny_spec.options, val_every=0, threads=1))
    jobs = submit_cells(spec, SlurmOptions(cluster="local", timeout_min=5), log=lambda *_: None)
    assert sorted(j.result()["finished"] for j in jobs) == [1, 1, 1]
    cells = [r for r in load_results(tmp_path, "synthcity") if r["kind"] == "cell"]
    assert sorted(r["label"] for r in cells) == ["charbonnier", "l1", "ssim"]
    assert all(r["config"]["backbone"] == "dncnn_small" and r["run"]["plugins"] == list(grid.plugins) for r in cells)


def test_a_process_takes_its_longest_cells_first():
    """sadnet_small's step is several times ffdnet_small's: its cells go first; equal estimates keep grid order."""
    import torch

    from bench.config import CellConfig, TrainConfig
    from bench.schedule import longest_first

    train = TrainConfig(iterations=10, batch=2, crop=32)
    cells = [CellConfig("synthcity", b, o, train=train) for b, o in
             [("ffdnet_small", "l1"), ("ffdnet_small", "ssim"), ("sadnet_small", "l1")]]
    rng = torch.get_rng_state()
    ordered = longest_first(cells, torch.device("cpu"), log=lambda *_: None)
    assert [(c.backbone, c.objective) for c in ordered] == [("sadnet_small", "l1"), ("ffdnet_small", "l1"),
                                                            ("ffdnet_small", "ssim")]
    assert torch.equal(rng, torch.get_rng_state())  # timing draws nothing from the cells' random stream
    assert longest_first(cells[:2], torch.device("cpu")) == cells[:2]  # one backbone: nothing timed
