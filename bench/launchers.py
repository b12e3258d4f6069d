"""Launch cells elsewhere: Slurm (or a local stand-in) through submitit, one job per cell.

Each job runs ``run_grid`` restricted to its cell, so the cell's lock, resume and atomic result
apply as in a local run; jobs and local runs can share a results folder. Nothing here schedules:
submitit submits, Slurm schedules.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.grids import Grid


@dataclass(frozen=True)
class SlurmOptions:
    cluster: str | None = None  # None: Slurm if available (submitit's auto), "local": subprocesses, "debug"
    partition: str | None = None
    timeout_min: int = 60 * 24
    gpus_per_node: int = 0
    cpus_per_task: int = 8
    mem_gb: int = 32


def run_one_cell(grid: Grid, suite_name: str, suite_options, results: Path, device: str, cell_id: str) -> dict:
    """The job: run the grid's cell ``cell_id`` (under its lock; resumes; atomic result). Returns its summary."""
    from bench.runner import run_grid
    from bench.suites import build_suite

    before, finished, failed = run_grid(grid, build_suite(suite_name, suite_options), results, device,
                                        only={cell_id})
    if failed:
        raise BenchError(f"cell {cell_id} failed; see its failed.json under {results}/{suite_name}")
    return {"cell_id": cell_id, "done_before": before, "finished": finished}


def submit_cells(grid: Grid, suite_name: str, suite_options, results: Path, device: str = "cpu",
                 slurm: SlurmOptions = SlurmOptions(), log=print) -> list:
    """Submit one job per pending cell; returns the submitit jobs (``job.result()`` waits)."""
    try:
        import submitit
    except ImportError:
        raise BenchError("--launcher submitit needs the submitit package: pip install submitit") from None
    from bench.cell_state import cell_state

    base = Path(results) / suite_name
    cells = [c for c in grid.cells(suite_name) if cell_state(base / c.dirname()).state == "pending"]
    if not cells:
        log(f"grid {grid.name}: no pending cells to submit")
        return []
    executor = submitit.AutoExecutor(folder=Path(results) / "_submitit" / "%j", cluster=slurm.cluster)
    params = {"timeout_min": slurm.timeout_min, "cpus_per_task": slurm.cpus_per_task}
    if executor.cluster == "slurm":
        params.update(slurm_partition=slurm.partition, gpus_per_node=slurm.gpus_per_node, slurm_mem_gb=slurm.mem_gb)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    jobs = []
    with executor.batch():
        for c in cells:
            jobs.append(executor.submit(run_one_cell, grid, suite_name, suite_options, Path(results), device,
                                        c.cell_hash()))
    log(f"submitted {len(jobs)} cells of grid {grid.name} to {executor.cluster}: "
        + ", ".join(str(j.job_id) for j in jobs[:8]) + (" ..." if len(jobs) > 8 else ""))
    return jobs
