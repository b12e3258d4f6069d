"""The whole path on a tiny synthcity: data, evaluator training, denoiser training, scoring,
results files, report, resume, and the CLI's errors."""
import json
import os
import subprocess
import sys

import pytest

from bench.config import TrainConfig
from bench.grids import Grid, product
from bench.report import render_report
from bench.results import load_results
from bench.runner import run_grid
from bench.suites import SuiteOptions, build_suite
from bench.synthcity.dataset import SynthcitySpec

TINY = SynthcitySpec(height=64, width=128, n_train=12, n_val=4)
GRID = Grid("tiny", "test", product(("ffdnet_small",), ("l1", "ssim")), test_sigmas=(25.0, 50.0),
            train={"synthcity": TrainConfig(iterations=6, batch=2, crop=32, lr=1e-3, checkpoint_every=3)})


def _suite():
    from losses.train_features import FeatureTrainSpec
    from seg_eval.train_embedded import SegTrainSpec

    return build_suite("synthcity", SuiteOptions(synthcity=TINY, seg_train=SegTrainSpec(iterations=4, batch=2, crop=64),
                                                 feature_train=FeatureTrainSpec(iterations=3, batch=4, crop=32)))


def test_objectives_get_the_networks_they_need_and_results_record_them(tmp_path):
    """Feature network (trained for the suite on first use), LPIPS formula, frozen segmenter, GAN."""
    grid = Grid("needs", "test", product(("ffdnet_small",), ("d2sm", "lpips", "cross_entropy", "gan")),
                test_sigmas=(25.0,), train=GRID.train)
    assert run_grid(grid, _suite(), tmp_path, log=lambda *_: None) == (0, 4, 0)
    cells = {r["config"]["objective"]: r for r in load_results(tmp_path, "synthcity") if r["kind"] == "cell"}
    feats = cells["d2sm"]["weights"]["features"]
    assert feats["width"] == 0.25 and len(feats["sha256"]) == 64 and "synthcity_vgg19" in feats["checkpoint"]
    assert "LPIPS formula" in cells["lpips"]["weights"]["lpips"]["description"]
    assert set(cells["cross_entropy"]["weights"]) == {"segmenter"} == set(cells["gan"]["weights"])
    assert "d2sm" in cells["d2sm"]["train"]["final_terms"] and "d_loss" in cells["gan"]["train"]["final_terms"]
    assert cells["d2sm"]["objective_params"]["weight"] == 0.01 and cells["d2sm"]["objective_params"]["queue_size"] == 64


def test_grid_runs_scores_reports_and_resumes(tmp_path):
    logs = []
    assert run_grid(GRID, _suite(), tmp_path, log=logs.append) == (0, 2, 0)
    results = load_results(tmp_path, "synthcity")
    cells = [r for r in results if r["kind"] == "cell"]
    assert len(cells) == 2 and len(results) == 3
    r = cells[0]
    for sigma in ("25", "50"):
        m = r["metrics"][sigma]
        assert 0 < m["psnr"] < 60 and 0 < m["ssim"] <= 1 and 0 <= m["miou"] <= 1
        assert len(m["per_image"]["psnr"]) == 4 and len(m["per_class_iou"]) == 19
        assert set(m["areas"]) == {"intersect", "union", "pred", "label"}
        for area in ("intersect", "union"):  # per image and class: their sums are the grid's areas
            per_image = m["per_image"][area]
            assert len(per_image) == 4 and len(per_image[0]) == 19
            assert [sum(col) for col in zip(*per_image, strict=True)] == m["areas"][area]
    assert r["weights"]["segmenter"]["sha256"] and r["env"]["versions"]["torch"]
    assert r["train"]["iterations_run"] == 6 and r["config"]["seed"] == 0 and r["peak_rss_mb"] > 0
    ref = next(x for x in results if x["kind"] == "reference")
    assert ref["metrics"]["clean input"]["25"]["psnr"] == float("inf")
    assert ref["metrics"]["noisy input"]["50"]["psnr"] < ref["metrics"]["noisy input"]["25"]["psnr"]
    text = render_report(results, "tiny")
    assert "ffdnet_small" in text and "*noisy input*" in text
    from bench.plots import write_plots
    from bench.runner import Context

    figures = write_plots(results, tmp_path / "plots", ctx=Context(_suite(), "cpu", lambda *_: None))
    assert sorted(p.name for p in figures) == ["miou_change_per_class_sigma25.png", "miou_change_per_class_sigma50.png",
                                               "psnr_vs_miou_sigma25.png", "psnr_vs_miou_sigma50.png",
                                               "qualitative_sigma50.png"]
    assert all(p.stat().st_size > 5000 for p in figures)
    # A second run finds everything done and recomputes nothing.
    before = {p: os.stat(p).st_mtime_ns for p in (x["_path"] for x in results)}
    assert run_grid(GRID, _suite(), tmp_path, log=logs.append) == (2, 0, 0)
    assert before == {p: os.stat(p).st_mtime_ns for p in before}
    # Same seed, same machine: identical metrics when a cell is recomputed from scratch.
    folder = os.path.dirname(cells[0]["_path"])
    for f in os.listdir(folder):
        os.unlink(os.path.join(folder, f))
    assert run_grid(GRID, _suite(), tmp_path, log=logs.append) == (1, 1, 0)
    again = json.loads(open(cells[0]["_path"]).read())
    assert again["metrics"]["25"]["per_image"] == cells[0]["metrics"]["25"]["per_image"]
    assert again["metrics"]["50"]["miou"] == cells[0]["metrics"]["50"]["miou"]


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, message", [
    (["run", "--grid", "smoek"], "did you mean 'smoke'"),
    (["run", "--suite", "cityscape"], "did you mean 'cityscapes'"),
    (["run", "--suite", "cityscapes"], "--data-root"),
    (["run", "--suite", "cityscapes", "--data-root", "/nonexistent", "--seg-config", "a.py", "--seg-checkpoint", "b"],
     "does not exist"),
])
def test_cli_errors_are_one_line_and_nonzero(args, message):
    p = _cli(*args, env={"CITYSCAPES_DATASET": ""})
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr


def test_unwritable_results_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permissions
        ro = tmp_path / "file"
        ro.write_text("x")
    p = _cli("run", "--results", str(ro))
    assert p.returncode == 2 and "not writable" in p.stderr


def test_list_and_help():
    p = _cli("list")
    assert p.returncode == 0 and "smoke" in p.stdout and "ffdnet" in p.stdout
    assert "embedded evaluators" in p.stdout and "erfnet" in p.stdout and "unet" in p.stdout
    assert _cli("--help").returncode == 0


def test_tampered_evaluator_weights_are_refused(tmp_path, monkeypatch):
    from bench.base.errors import BenchError

    monkeypatch.setenv("D2SM_BENCH_CACHE", str(tmp_path / "own-cache"))  # never tamper with the shared test cache
    suite = _suite()
    suite.segmenter_files(log=lambda *_: None)  # trains the tiny evaluator into the test cache
    ckpt, _ = suite.locate_segmenter()
    ckpt.write_bytes(ckpt.read_bytes() + b"x")
    with pytest.raises(BenchError, match="checksum"):
        suite.segmenter_files(log=lambda *_: None)


def test_numbers_of_another_evaluator_or_data_are_never_reused(tmp_path):
    """A finished cell records the data and the evaluator it was scored with; a run whose identity differs refuses
    the folder with one line (it used to say "1 done, 0 to run" and report the old numbers under the new name), and
    --rerun recomputes the cells. Results written before the identity existed keep working where their segmenter
    checkpoint is this one's."""
    from bench.base.errors import BenchError
    from bench.results import RESULT_FILE

    grid = Grid("one", "test", product(("ffdnet_small",), ("l1",)), test_sigmas=(25.0,), train=GRID.train)
    assert run_grid(grid, _suite(), tmp_path, log=lambda *_: None) == (0, 1, 0)
    [cell] = [r for r in load_results(tmp_path, "synthcity") if r["kind"] == "cell"]
    assert set(cell["evaluation"]) == {"key", "data", "segmenter"} and set(cell["evaluation"]["data"]) == {"train", "val"}
    path = tmp_path / "synthcity" / f"{cell['slug']}-{cell['cell_id']}" / RESULT_FILE
    original = json.loads(path.read_text())
    legacy = {k: v for k, v in original.items() if k != "evaluation"}  # an older result, same segmenter
    path.write_text(json.dumps(legacy))
    assert run_grid(grid, _suite(), tmp_path, log=lambda *_: None) == (1, 0, 0)
    other = {**original, "evaluation": {**original["evaluation"], "key": "0" * 16,
                                        "segmenter": {**original["evaluation"]["segmenter"], "checkpoint": "f" * 64}}}
    path.write_text(json.dumps(other))
    with pytest.raises(BenchError, match="measured with another segmenter checkpoint than this run: use another "
                                         "--results folder"):
        run_grid(grid, _suite(), tmp_path, log=lambda *_: None)
    assert json.loads(path.read_text()) == other  # nothing changed
    assert run_grid(grid, _suite(), tmp_path, log=lambda *_: None, rerun=True) == (1, 1, 0)
    assert json.loads(path.read_text())["evaluation"] == original["evaluation"]


def test_a_grid_of_another_degradation_with_a_plugin_metric_and_metrics_added_later(tmp_path):
    """Train and score under poisson_gaussian with the example's plugin metric; later ask for two more metrics: the
    finished cells are scored with them from their saved weights (no training), their old values kept bit for bit."""
    from dataclasses import replace
    from pathlib import Path

    from bench.plugins import load_plugins

    load_plugins([str(Path(__file__).parents[1] / "examples" / "gmsd.py")])
    base = GRID.with_overrides(['train.degradation="poisson_gaussian"'])
    grid = replace(base, metrics=("psnr", "gmsd", "miou"))
    assert run_grid(grid, _suite(), tmp_path, log=lambda *_: None) == (0, 2, 0)
    first = {r["slug"]: r for r in load_results(tmp_path, "synthcity") if r["kind"] == "cell"}
    assert all("@poisson_gaussian" in s for s in first) and len(first) == 2
    r = next(iter(first.values()))
    assert set(r["metric_info"]) == {"psnr", "gmsd", "miou"} and "ssim" not in r["metrics"]["25"]
    assert r["config"]["train"]["degradation"] == "poisson_gaussian"
    ref = next(x for x in load_results(tmp_path, "synthcity") if x["kind"] == "reference")
    assert ref["config"]["degradation"] == ["poisson_gaussian", {}]
    logs: list[str] = []
    more = replace(grid, metrics=("psnr", "gmsd", "miou", "ssim", "semantic_consistency"))
    assert run_grid(more, _suite(), tmp_path, log=logs.append) == (2, 0, 0)
    assert sum("from its saved weights (no training)" in line for line in logs) == 2
    after = {r["slug"]: r for r in load_results(tmp_path, "synthcity") if r["kind"] == "cell"}
    for slug, old in first.items():
        new = after[slug]
        assert set(new["metric_info"]) == {"psnr", "gmsd", "miou", "ssim", "semantic_consistency"}
        assert new["train"] == old["train"] and new["created"] == old["created"]
        for sigma in ("25", "50"):
            for k in ("psnr", "gmsd", "miou"):
                assert new["metrics"][sigma][k] == old["metrics"][sigma][k]
                assert new["metrics"][sigma]["per_image"].get(k) == old["metrics"][sigma]["per_image"].get(k)
            assert 0 < new["metrics"][sigma]["ssim"] <= 1 and 0 < new["metrics"][sigma]["semantic_consistency"] <= 1
    text = render_report(list(after.values()) + [ref], "pg")
    assert "ffdnet_small @ poisson_gaussian" in text and "SSIM" in text and "GMSD ↓" in text
    assert "SC-mIoU" in text
