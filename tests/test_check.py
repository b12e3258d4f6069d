import json

from bench.check import compare, render_findings, values_from_results

BASE = {"ffdnet_small__l1__s0|25|psnr": 30.0, "ffdnet_small__l1__s0|25|ssim": 0.9,
        "ffdnet_small__l1__s0|25|miou": 0.5}
TOL = {"psnr": 0.1, "ssim": 0.005, "miou": 0.01}


def test_regression_improvement_within_tolerance_and_missing():
    cur = {"ffdnet_small__l1__s0|25|psnr": 29.85, "ffdnet_small__l1__s0|25|ssim": 0.91}
    status = {f.key.rsplit("|", 1)[1]: f.status for f in compare(cur, BASE, TOL)}
    assert status == {"psnr": "regression", "ssim": "improvement", "miou": "missing"}
    same = {k: v + 0.004 for k, v in BASE.items()}  # within every tolerance
    assert all(f.status == "ok" for f in compare(same, BASE, TOL))
    assert "regression" in render_findings(compare(cur, BASE, TOL), TOL)


def _result(psnr):
    return {"kind": "cell", "cell_id": "x", "slug": "ffdnet_small__l1__s0", "label": "l1", "seed": 0,
            "config": {"backbone": "ffdnet_small", "objective": "l1"},
            "metrics": {"25": {"psnr": psnr, "ssim": 0.9, "miou": 0.5}}}


def _write_smoke_cell(root, psnr, prints=None):
    from bench.grids import GRIDS
    from bench.results import CellResult, write_result

    cell = GRIDS.get("smoke").cells("synthcity")[0]
    write_result(root / "synthcity" / cell.dirname(), CellResult(
        cell_id=cell.cell_hash(), slug=cell.slug(), label=cell.label(), config=cell.to_dict(),
        metrics=_result(psnr)["metrics"], train={"fingerprints": prints} if prints else {}, objective_params={},
        seed=0, precision="fp32", weights={}, env={}, created="2026-01-01T00:00:00+00:00"))
    return cell


def test_cli_fails_on_injected_regression_and_passes_on_improvement(tmp_path):
    from bench.cli import main

    runs, baseline = tmp_path / "runs", tmp_path / "smoke.json"
    cell = _write_smoke_cell(runs, 30.0)
    check = ["check", "--baseline", str(baseline), "--results", str(runs)]
    assert main(check) == 2  # no baseline yet: a clear error
    assert main([*check, "--update-baseline", "--no-instrument"]) == 0  # synthetic cells: no weights to freeze
    assert json.loads(baseline.read_text())["values"][f"{cell.slug()}|25|psnr"] == 30.0
    assert main(check) == 0
    _write_smoke_cell(runs, 29.5)  # injected regression
    assert main(check) == 1
    _write_smoke_cell(runs, 30.5)  # an improvement passes
    assert main(check) == 0
    assert main([*check, "--tolerance", "psnr"]) == 2


def test_values_from_results_keys():
    assert values_from_results([_result(30.0)]) == {"ffdnet_small__l1__s0|25|psnr": 30.0,
                                                    "ffdnet_small__l1__s0|25|ssim": 0.9,
                                                    "ffdnet_small__l1__s0|25|miou": 0.5}


def test_check_says_first_whether_training_reproduced_the_baselines_weights(tmp_path, capsys):
    """Exact cells record weight fingerprints; a baseline with them is checked bit for bit before the values, and
    other weights fail the check even when every value is within tolerance (exact arithmetic is not exact there)."""
    from bench.cli import main

    runs, baseline = tmp_path / "runs", tmp_path / "smoke.json"
    prints = {"1": "a" * 64, "10": "b" * 64, "1200": "c" * 64}
    cell = _write_smoke_cell(runs, 30.0, prints)
    check = ["check", "--baseline", str(baseline), "--results", str(runs)]
    assert main([*check, "--update-baseline", "--no-instrument"]) == 0
    assert json.loads(baseline.read_text())["fingerprints"] == {cell.slug(): prints}
    capsys.readouterr()
    assert main(check) == 0
    out = capsys.readouterr().out
    assert out.startswith("Training: the 1 exact cells reproduced the baseline's weights bit for bit (after steps "
                          "1, 10, 1200).")
    _write_smoke_cell(runs, 30.0, {**prints, "10": "d" * 64, "1200": "e" * 64})
    assert main(check) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"Training differs from the baseline's machine from step 10 ({cell.slug()}): exact "
                          "arithmetic is not exact here")
    assert "All 3 values within tolerance" in out
