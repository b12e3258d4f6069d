"""Real processes, killed and raced: nothing lost, nothing done twice, nothing corrupt used."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.base.errors import BenchError
from bench.cell_state import CellLock, cell_state, lock_holder
from bench.results import load_results

DRIVER = Path(__file__).with_name("grid_driver.py")


@pytest.fixture(scope="module")
def prepared():
    """Data and evaluator of the tiny suite, made once before processes share them."""
    sys.path.insert(0, str(DRIVER.parent))
    import grid_driver

    s = grid_driver.suite()
    s.data_root(lambda *_: None)
    s.segmenter_files(lambda *_: None)


def _drive(results, objectives, *extra, wait=True):
    cmd = [sys.executable, str(DRIVER), str(results), objectives, *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _summary(proc_stdout):
    return json.loads(proc_stdout.strip().splitlines()[-1])


def _cells(results):
    return {r["config"]["objective"]: r for r in load_results(results, "synthcity") if r["kind"] == "cell"}


def test_kill_9_mid_training_resumes_to_the_uninterrupted_result(tmp_path, prepared):
    full = _drive(tmp_path / "a", "l1")
    assert full.returncode == 0, full.stderr
    killed = _drive(tmp_path / "b", "l1", "--kill-after-checkpoint", "20")
    assert killed.returncode == -9
    folder = next((tmp_path / "b" / "synthcity").glob("ffdnet_small__l1*"))
    st = cell_state(folder)
    assert st.state == "pending" and "checkpoint" in st.detail  # the lock died with the process
    resumed = _drive(tmp_path / "b", "l1")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from train.pth at iteration 20" in (folder / "log.txt").read_text()
    a, b = _cells(tmp_path / "a")["l1"], _cells(tmp_path / "b")["l1"]
    assert a["metrics"]["25"]["per_image"] == b["metrics"]["25"]["per_image"]
    assert a["metrics"]["25"]["miou"] == b["metrics"]["25"]["miou"]


@pytest.mark.parametrize("name, code", [("TERM", 143), ("INT", 130)])
def test_sigterm_and_ctrl_c_write_a_checkpoint_and_resume_to_the_uninterrupted_result(tmp_path, prepared, name, code):
    """The signal arrives mid-iteration 13 (checkpoints every 10): the checkpoint of iteration 14 is written, the
    process ends with one line, and the resumed cell ends where an uninterrupted run does."""
    import torch

    full = _drive(tmp_path / "a", "l1")
    stopped = _drive(tmp_path / "b", "l1", "--signal-at", name, "13")
    assert stopped.returncode == code, stopped.stderr
    assert "checkpoint" in _summary(stopped.stdout)["interrupted"] and "Traceback" not in stopped.stderr
    folder = next((tmp_path / "b" / "synthcity").glob("ffdnet_small__l1*"))
    assert torch.load(folder / "train.pth", weights_only=True)["iteration"] == 14
    st = cell_state(folder)
    assert not (folder / "failed.json").exists() and st.state == "pending" and st.iteration == 14  # the resume point
    resumed = _drive(tmp_path / "b", "l1")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from train.pth at iteration 14" in (folder / "log.txt").read_text()
    a, b = _cells(tmp_path / "a")["l1"], _cells(tmp_path / "b")["l1"]
    assert full.returncode == 0 and a["metrics"]["25"]["per_image"] == b["metrics"]["25"]["per_image"]


def test_kill_during_the_result_write_never_leaves_a_readable_half_result(tmp_path, prepared):
    killed = _drive(tmp_path, "l1", "--kill-in-result-write")
    assert killed.returncode == -9
    folder = next((tmp_path / "synthcity").glob("ffdnet_small__l1*"))
    assert not (folder / "result.json").exists() and list(folder.glob(".result.json.*.tmp"))
    assert cell_state(folder).state == "pending" and _cells(tmp_path) == {}
    again = _drive(tmp_path, "l1")
    assert again.returncode == 0 and _summary(again.stdout)["finished"] == 1
    assert cell_state(folder).state == "done"


def test_two_processes_on_one_folder_run_every_cell_exactly_once(tmp_path, prepared):
    objectives = "l1,ssim,gan,explode"
    procs = [_drive(tmp_path, objectives, wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    summaries = [_summary(o[0]) for o in outs]
    assert sum(s["finished"] for s in summaries) == 3, outs
    for folder in (tmp_path / "synthcity").glob("ffdnet_small__*"):
        log = (folder / "log.txt").read_text()
        assert log.count("iter 30/30") <= 1 and log.count(" done") <= 1, folder.name  # trained by one process only
        assert "resumed" not in log
    assert len(_cells(tmp_path)) == 3


def test_a_failing_cell_is_marked_with_its_reason_and_the_others_go_on(tmp_path, prepared):
    out = _drive(tmp_path, "explode,l1")
    assert out.returncode == 1 and _summary(out.stdout) == {"before": 0, "finished": 1, "failed": 1}
    folder = next((tmp_path / "synthcity").glob("ffdnet_small__explode*"))
    st = cell_state(folder)
    assert st.state == "failed" and "loss is nan at iteration 3" in st.detail
    assert "l1" in _cells(tmp_path)
    # a later run does not retry it unless asked, and still reports it
    again = _drive(tmp_path, "explode,l1")
    assert again.returncode == 1 and _summary(again.stdout)["finished"] == 0


def test_corrupt_result_and_checkpoint_are_reported_not_used(tmp_path, prepared):
    assert _drive(tmp_path, "l1").returncode == 0
    folder = next((tmp_path / "synthcity").glob("ffdnet_small__l1*"))
    (folder / "result.json").write_text('{"schema": 1, "metr')
    assert cell_state(folder).state == "corrupt"
    with pytest.raises(BenchError, match="corrupt"):
        load_results(tmp_path, "synthcity")
    out = _drive(tmp_path, "l1")
    assert out.returncode == 1 and "corrupt" in out.stderr
    # a corrupt checkpoint: the cell fails with the reason instead of training from garbage
    (folder / "result.json").unlink()
    (folder / "train.pth").write_bytes(b"\x00garbage")
    out = _drive(tmp_path, "l1")
    assert out.returncode == 1 and "corrupt or incompatible" in cell_state(folder).detail


def test_lock_is_exclusive_and_released(tmp_path):
    a, b = CellLock(tmp_path), CellLock(tmp_path)
    assert a.acquire() and not b.acquire()
    assert lock_holder(tmp_path)["pid"] == os.getpid()
    a.release()
    assert lock_holder(tmp_path) is None and b.acquire()
    b.release()


def test_torchrun_two_processes_on_gloo_train_one_cell_together(tmp_path, prepared):
    """DDP inside a cell: two CPU processes, each half of every batch; rank 0 alone writes. Averaged gradients
    equal the full-batch gradient, so the result matches a single process up to float rounding."""
    single = _drive(tmp_path / "one", "l1")
    assert single.returncode == 0, single.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(DRIVER),
           str(tmp_path / "two"), "l1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = next((tmp_path / "two" / "synthcity").glob("ffdnet_small__l1*"))
    assert (folder / "log.rank1.txt").is_file() and "done" in (folder / "log.txt").read_text()
    a, b = _cells(tmp_path / "one")["l1"]["metrics"]["25"], _cells(tmp_path / "two")["l1"]["metrics"]["25"]
    assert abs(a["psnr"] - b["psnr"]) < 0.01 and abs(a["ssim"] - b["ssim"]) < 1e-3

    def last_loss(log):
        return float(log.read_text().split("iter 30/30 l1 ")[1].split()[0])

    ranks = [last_loss(folder / "log.txt"), last_loss(folder / "log.rank1.txt")]
    one = last_loss(next((tmp_path / "one" / "synthcity").glob("ffdnet_small__l1*")) / "log.txt")
    assert ranks[0] != ranks[1] and abs(sum(ranks) / 2 - one) < 2e-4  # each rank had its half of every batch


def _probe_many(root: str) -> None:
    from bench.results import check_writable

    for _ in range(200):
        check_writable(Path(root))


def test_workers_checking_one_results_folder_at_once_do_not_trip_each_other(tmp_path):
    """Each process probes with a file of its own (one shared probe name let a job unlink another's: CI saw a
    submitit job fail with 'not writable (No such file or directory)')."""
    import multiprocessing as mp

    procs = [mp.get_context("spawn").Process(target=_probe_many, args=(str(tmp_path),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert not list(tmp_path.iterdir())
