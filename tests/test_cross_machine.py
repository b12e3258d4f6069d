"""The cross-machine claim: a smoke cell trained with one thread (another reduction order, as another CPU gives)
lands within the committed baseline's tolerances, which were written from a run with two threads."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.check import compare, values_from_results
from bench.results import load_results

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "results" / "baselines" / "smoke.json"


def test_the_baseline_says_how_its_tolerances_were_derived():
    base = json.loads(BASELINE.read_text())
    derived = base["derivation"]
    assert base["written_with"]["threads"] == 2
    bounds = {"psnr": 0.15, "ssim": 0.005, "miou": 0.015}  # the instrument's target (issue 12)
    assert derived["bounds"] == bounds
    for metric, tol in base["tolerances"].items():
        assert tol == pytest.approx(derived["tolerances"][metric])
        assert derived["thread_rms_diff"][metric] * derived["factor"] <= tol <= derived["thread_rms_diff"][metric] * \
            derived["factor"] + 1e-4  # derived from the measured spread, neither loosened nor tightened
    # A tolerance above its bound is said, not clipped: the smoke cells are not yet that stable.
    assert sorted(derived["exceeds_bounds"]) == sorted(m for m, tol in base["tolerances"].items() if tol > bounds[m])


@pytest.mark.slow
def test_a_one_thread_smoke_cell_matches_the_two_thread_baseline(tmp_path):
    env_cmd = [sys.executable, "-m", "bench", "run", "--grid", "smoke", "--shard", "0/2", "--workers", "1",
               "--threads", "1", "--results", str(tmp_path)]
    done = subprocess.run(env_cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    current = values_from_results(load_results(tmp_path, "synthcity"))
    base = json.loads(BASELINE.read_text())
    values = {k: v for k, v in base["values"].items() if k.split("|")[0] in {key.split("|")[0] for key in current}}
    assert len(values) == 6
    findings = compare(current, values, base["tolerances"])
    bad = [(f.key, f.baseline, f.current) for f in findings if f.status != "ok"]
    assert not bad, bad
