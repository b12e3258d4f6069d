"""``--seeds auto``: the seed rule on groups of known truth, and the command line on a real (tiny) grid."""
from pathlib import Path

import numpy as np
import pytest

from bench.benchmarks.calibration import auto_trial, group, image_se
from bench.seed_rule import START, Family, look_alpha, looks, plan

REPO = Path(__file__).resolve().parents[1]


def test_the_level_is_split_over_the_possible_looks():
    assert looks(8) == 6 and look_alpha(8) == pytest.approx(0.05 / 6)
    assert looks(4) == 2 and look_alpha(4) == pytest.approx(0.025)


def test_a_clear_ranking_is_decided_at_the_first_look():
    se = image_se("psnr")
    rng = np.random.default_rng(0)
    g = group(rng, 3, 8, 3 * se, "psnr")
    g["row1"] = type(g["row1"])(values=g["row1"].values + 6.0)  # l1 < row2 < row1 by 10+ seed sds
    g["row2"] = type(g["row2"])(values=g["row2"].values + 3.0)
    found, seeds, final, alpha = auto_trial(g, "psnr", 8, 300, 0)
    assert seeds == {"l1": START, "row1": START, "row2": START}
    assert found == {frozenset(("l1", "row1")), frozenset(("l1", "row2")), frozenset(("row1", "row2"))}
    assert final["row1"]["letters"] == "a" and alpha == pytest.approx(0.05 / 6)


def test_undecided_rows_get_seeds_until_the_maximum_and_say_why():
    rng = np.random.default_rng(1)
    g = group(rng, 3, 6, 10 * image_se("psnr"), "psnr")  # a null group: nothing can be decided
    labels = list(g)
    calls = []

    def families(seeds):
        calls.append(dict(seeds))
        return [Family("x σ=25 PSNR", {k: type(g[k])(values=g[k].values[:seeds[k]]) for k in labels},
                       {k: k for k in labels}, True, "l1", 0)]

    p = plan(labels, families, max_seeds=6, n_boot=300)
    assert p.done and p.seeds == {k: 6 for k in labels} and len(p.history) == looks(6) == 4
    assert [c["l1"] for c in calls] == [3, 4, 5, 6]  # one look per added seed, never more than the bound
    assert any("not yet different from" in r and "(the reference)" in r for r in p.reasons("row1"))


def test_a_plan_waits_for_missing_cells():
    p = plan(["a", "b"], lambda seeds: None, max_seeds=8)
    assert not p.done and p.seeds == {"a": START, "b": START} and p.history == []


def _grid_file(tmp_path: Path) -> Path:
    path = tmp_path / "auto.toml"
    path.write_text('name = "auto-tiny"\ndescription = "two rows, few steps"\nbackbones = ["ffdnet_tiny"]\n'
                    'objectives = ["l1", "ssim"]\ntest_sigmas = [50]\n[train.synthcity]\niterations = 20\n'
                    'precision = "fp32"\n')
    return path


def _bench(capsys, *args: str) -> tuple[int, str, str]:
    """``python -m bench ARGS`` in this process: (exit code, stdout, stderr)."""
    from bench.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_run_seeds_auto_trains_looks_until_done_and_every_command_agrees(tmp_path, capsys):
    grid, results = str(_grid_file(tmp_path)), str(tmp_path / "results")
    common = ["--grid", grid, "--results", results, "--seeds", "auto", "--max-seeds", "4"]
    code, _, err = _bench(capsys, "run", *common, "--workers", "1")
    assert code == 0, err[-3000:]
    assert "--seeds auto, look 1: 6 cells (the first 3 seeds of every row)" in err and "--seeds auto: done after" in err
    folders = sorted(p.name for p in (tmp_path / "results" / "synthcity").glob("ffdnet_tiny__*"))
    seeds = {row: sum(f.startswith(f"ffdnet_tiny__{row}__") for f in folders) for row in ("l1", "ssim")}
    assert all(3 <= n <= 4 for n in seeds.values()), folders
    code, _, err = _bench(capsys, "run", *common, "--workers", "1")  # replayed from the results: nothing to train
    assert code == 0 and "done after" in err and ", look " not in err
    code, out, _ = _bench(capsys, "status", *common)
    assert code == 0 and "`--seeds auto` (3 to 4 seeds per row; letters at 0.025" in out
    assert f"| ffdnet_tiny x l1 | {seeds['l1']} |" in out
    code, out, _ = _bench(capsys, "report", *common)
    assert code == 0 and "letters and intervals at level 0.025" in out and f"(up to {max(seeds.values())})" in out
    code, out, _ = _bench(capsys, "report", *common, "--format", "csv")
    assert {r.split(",")[0] for r in out.splitlines()[1:] if r.startswith("ffdnet")} == {"ffdnet_tiny"}
    code, out, _ = _bench(capsys, "report", *common, "--claims")
    assert code == 0 and "No claim applies" in out  # l1 and ssim: none of the paper's claims names them both
