import json

import pytest

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
        seed=0, precision="fp32", weights={}, env={}, created="2026-01-01T00:00:00+00:00",
        metric_info={m: m for m in ("psnr", "ssim", "miou")}))
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


def _baseline(path, **over):
    from bench.grids import GRIDS

    cell = GRIDS.get("smoke").cells("synthcity")[0]
    data = {"suite": "synthcity", "grid": "smoke", "tolerances": {"psnr": 0.1, "ssim": 0.005, "miou": 0.01},
            "values": {f"{cell.slug()}|25|psnr": 30.0, f"{cell.slug()}|25|ssim": 0.9, f"{cell.slug()}|25|miou": 0.5}}
    for key, value in over.items():
        if key == "value":
            data["values"][f"{cell.slug()}|25|psnr"] = value
        elif key == "tolerance":
            data["tolerances"]["psnr"] = value
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return path


def test_check_fails_closed(tmp_path, capsys):
    """Nothing to compare, NaN anywhere, another grid, a requested section that is absent: never "ok"."""
    from bench.cli import main

    runs = tmp_path / "runs"
    _write_smoke_cell(runs, 30.0)
    check = ["check", "--results", str(runs), "--no-instrument", "--baseline"]
    assert main([*check, str(_baseline(tmp_path / "ok.json"))]) == 0
    cases = {
        "empty": (_baseline(tmp_path / "empty.json", values={}), 2, "'values' is empty"),
        "nan value": (_baseline(tmp_path / "nan.json", value=float("nan")), 2, "not a finite number"),
        "nan tolerance": (_baseline(tmp_path / "nantol.json", tolerance=float("nan")), 2, "not a finite number >= 0"),
        "string value": (_baseline(tmp_path / "str.json", value="30"), 2, "not a finite number"),
        "bad key": (_baseline(tmp_path / "key.json", values={"x": 1.0}), 2, "is not '<cell slug>|<sigma>|<metric>'"),
        "other grid": (_baseline(tmp_path / "grid.json", grid="full"), 1, "written for grid 'full'"),
    }
    for name, (path, code, message) in cases.items():
        capsys.readouterr()
        assert main([*check, str(path)]) == code, name
        out = capsys.readouterr()
        assert message in out.err + out.out, (name, out)
    capsys.readouterr()
    assert main([*check, str(_baseline(tmp_path / "ok.json")), "--tolerance", "psnr=nan"]) == 2
    assert "finite number >= 0" in capsys.readouterr().err
    assert main(["check", "--results", str(runs), "--instrument", "--baseline", str(tmp_path / "ok.json")]) == 1
    assert "no instrument section: the check fails" in capsys.readouterr().out
    from bench.base.errors import BenchError

    with pytest.raises(BenchError, match="is nan, outside"):  # the writer refuses a file the reader would refuse
        _write_smoke_cell(runs, float("nan"))
    [path] = runs.glob("synthcity/*/result.json")  # one written by other code (e.g. a val split of all-255 labels)
    data = json.loads(path.read_text())
    data["metrics"]["25"]["psnr"] = float("nan")
    path.write_text(json.dumps(data))
    assert main([*check, str(_baseline(tmp_path / "ok.json"))]) == 2
    assert "is nan, outside [0.0, inf]" in capsys.readouterr().err
    assert main([*check, str(tmp_path / "new.json"), "--update-baseline"]) == 2
    assert "is nan, outside" in capsys.readouterr().err and not (tmp_path / "new.json").exists()
