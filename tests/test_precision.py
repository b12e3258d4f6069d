"""The training precision: "auto" is measured once per machine and cached, and what ran is in the cell's hash."""
import json

import pytest

from bench import precision
from bench.grids import GRIDS


def test_auto_is_measured_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake(reps: int = 5) -> dict:
        calls.append(1)
        return {"fp32_s": 1.0, "bf16_s": 0.5, "ratio": 0.5}

    monkeypatch.setattr(precision, "measure_cpu", fake)
    assert precision.auto_precision("cpu", cache=tmp_path) == "bf16"
    assert precision.auto_precision("cpu", cache=tmp_path) == "bf16"
    assert len(calls) == 1
    (record,) = (tmp_path / "precision").glob("cpu-*.json")
    saved = json.loads(record.read_text())
    assert saved["precision"] == "bf16" and saved["ratio"] == 0.5 and saved["max_ratio"] == precision.BF16_MAX_RATIO


@pytest.mark.parametrize(("ratio", "verdict"), [(0.52, "bf16"), (0.95, "fp32"), (12.0, "fp32")])
def test_auto_chooses_bf16_only_where_it_is_measurably_faster(tmp_path, monkeypatch, ratio, verdict):
    monkeypatch.setattr(precision, "measure_cpu", lambda reps=5: {"fp32_s": 1.0, "bf16_s": ratio, "ratio": ratio})
    assert precision.auto_precision("cpu", cache=tmp_path) == verdict


def test_the_real_micro_benchmark_returns_positive_times():
    m = precision.measure_cpu(reps=1)
    assert m["fp32_s"] > 0 and m["bf16_s"] > 0 and m["ratio"] == pytest.approx(m["bf16_s"] / m["fp32_s"])


def test_explicit_precisions_pass_through_and_auto_is_resolved_in_the_cells(monkeypatch):
    monkeypatch.setattr(precision, "auto_precision", lambda device="cpu", cache=None: "bf16")
    assert precision.resolve("fp32") == "fp32" and precision.resolve("auto") == "bf16"
    grid = GRIDS.get("objectives")
    assert grid.train["synthcity"].precision == "auto"
    cells = grid.cells("synthcity")
    assert {c.train.precision for c in cells} == {"bf16"}
    fp32 = grid.with_precision("fp32").cells("synthcity")
    assert {c.train.precision for c in fp32} == {"fp32"}
    assert {c.cell_hash() for c in cells}.isdisjoint(c.cell_hash() for c in fp32)


def test_the_smoke_grid_pins_fp32_so_its_baseline_holds_on_any_cpu(monkeypatch):
    monkeypatch.setattr(precision, "auto_precision", lambda device="cpu", cache=None: "bf16")
    assert {c.train.precision for c in GRIDS.get("smoke").cells("synthcity")} == {"fp32"}
