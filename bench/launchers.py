"""Launch cells elsewhere: Slurm (or a local stand-in) through submitit, one job per cell.

Each job executes the run specification restricted to its cell (``bench.run_spec.submitit_job``), the
same entry point as a local run, so the cell's lock, resume, atomic result and every option apply; jobs
and local runs can share a results folder. Nothing here schedules: submitit submits, Slurm schedules.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import submitit

from bench.run_spec import RunSpec, reset_once, submitit_job


@dataclass(frozen=True)
class SlurmOptions:
    cluster: str | None = None  # None: Slurm if available (submitit's auto), "local": subprocesses, "debug"
    partition: str | None = None
    timeout_min: int = 60 * 24
    gpus_per_node: int = 0
    cpus_per_task: int = 8
    mem_gb: int = 32


class CellJob(submitit.helpers.Checkpointable):
    """One cell as a submitit job. A ``Checkpointable``: preempted or timed out, it is requeued with the same
    arguments and the cell resumes from its training checkpoint (written every few minutes, and on the SIGTERM
    that precedes preemption)."""

    def __call__(self, spec_dict: dict, cell_id: str) -> dict:
        return submitit_job(spec_dict, cell_id)


def submit_cells(spec: RunSpec, slurm: SlurmOptions = SlurmOptions(), log=print) -> list:
    """Submit one job per pending cell of ``spec``; returns the submitit jobs (``job.result()`` waits)."""
    from bench.cell_state import cell_state
    from bench.runner import validate

    cells = spec.cells()
    validate(cells)
    job_spec = reset_once(spec)
    base = spec.results / spec.suite
    cells = [c for c in cells if cell_state(base / c.dirname()).state == "pending"]
    if not cells:
        log(f"grid {spec.grid.name}: no pending cells to submit")
        return []
    executor = submitit.AutoExecutor(folder=Path(spec.results) / "_submitit" / "%j", cluster=slurm.cluster)
    params = {"timeout_min": slurm.timeout_min, "cpus_per_task": slurm.cpus_per_task}
    if executor.cluster == "slurm":
        params.update(slurm_partition=slurm.partition, gpus_per_node=slurm.gpus_per_node, slurm_mem_gb=slurm.mem_gb)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    spec_dict = job_spec.to_dict()
    jobs = []
    with executor.batch():
        for c in cells:
            jobs.append(executor.submit(CellJob(), spec_dict, c.cell_hash()))
    log(f"submitted {len(jobs)} cells of grid {spec.grid.name} to {executor.cluster}: "
        + ", ".join(str(j.job_id) for j in jobs[:8]) + (" ..." if len(jobs) > 8 else ""))
    return jobs
