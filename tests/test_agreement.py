"""report --agreement: Kendall's tau between the rows' order under the cells' evaluator and under another one
they were re-scored with; 1 for the same numbers, the swapped pair named when two rows trade places."""
import contextlib
import io
import json

import pytest

from bench.results import ScoredResult, load_results, write_result


def _rescore(root, mapping=None):
    """A scored result per cell, "measured by another evaluator": the cell's own metrics, or those of the cell that
    ``mapping`` names (same seed, another row): a second evaluator that swaps those rows."""
    cells = [r for r in load_results(root, "synthcity") if r["kind"] == "cell"]
    by = {(r["config"]["objective"], r["seed"]): r for r in cells}
    for r in cells:
        other = by[(mapping.get(r["config"]["objective"], r["config"]["objective"]), r["seed"])] if mapping else r
        folder = root / "synthcity" / f"scored-{r['slug']}-{r['cell_id']}"
        folder.mkdir()
        write_result(folder, ScoredResult(
            scored_id=r["cell_id"], name=r["slug"], source={"kind": "cell", "cell_id": r["cell_id"]},
            config=r["config"], metrics=other["metrics"], weights={}, env={}, created="2026",
            evaluation={"key": "other-evaluator"}, metric_info=r["metric_info"]))


def _report(root, *extra):
    from bench.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["report", "--results", str(root), "--resamples", "200", *extra])
    return code, buf.getvalue()


def test_the_same_numbers_agree_and_a_swap_is_named(tmp_path):
    from v2_fixture import write_v2_folder

    from bench.agreement import agreement_frame

    same = write_v2_folder(tmp_path / "same")
    assert _report(same, "--agreement")[0] == 2  # nothing re-scored yet: one line, exit 2
    _rescore(same)
    df = agreement_frame(load_results(same, "synthcity"), "miou", n_boot=200)
    assert len(df) == 3 and (df["swaps"] == "").all() and (df["rows"] == 5).all()
    assert list(df["tau"]) == pytest.approx([1.0] * 3) and list(df["tau_low"]) == pytest.approx([1.0] * 3)
    swapped = write_v2_folder(tmp_path / "swapped")
    _rescore(swapped, {"d2sm_internal": "gan", "gan": "d2sm_internal"})
    df = agreement_frame(load_results(swapped, "synthcity"), "miou", n_boot=200)
    assert (df["tau"] < 1).all() and df["swaps"].str.contains("gan ↔ d2sm_internal").all()
    assert (df["tau_low"] <= df["tau"] + 1e-12).all() and (df["tau"] <= df["tau_high"] + 1e-12).all()
    code, text = _report(swapped, "--agreement")
    assert code == 0 and "Kendall's τ" in text and "gan ↔ d2sm_internal" in text
    code, csv = _report(swapped, "--agreement", "psnr", "--format", "csv")
    assert code == 0 and csv.splitlines()[0].startswith("backbone,sigma,metric,evaluator")
    assert json.loads(json.dumps(list(df["rows"].astype(int)))) == [5, 5, 5]


def test_an_unknown_agreement_metric_is_one_line(tmp_path):
    from v2_fixture import write_v2_folder

    root = write_v2_folder(tmp_path)
    _rescore(root)
    assert _report(root, "--agreement", "mIoU")[0] == 2


def test_a_metric_the_rescorings_lack_or_a_cell_rescored_twice_is_one_line(tmp_path):
    import shutil

    from v2_fixture import write_v2_folder

    from bench.agreement import agreement_frame
    from bench.base.errors import BenchError

    root = write_v2_folder(tmp_path)
    _rescore(root)
    assert _report(root, "--agreement", "lpips")[0] == 2  # registered, but no re-scored result holds it
    with pytest.raises(BenchError, match="lack it"):
        agreement_frame(load_results(root, "synthcity"), "lpips")
    first = next((root / "synthcity").glob("scored-*"))
    shutil.copytree(first, first.with_name(first.name[:-12] + "0" * 12))
    data = json.loads((first.with_name(first.name[:-12] + "0" * 12) / "result.json").read_text())
    data["scored_id"] = "0" * 12
    (first.with_name(first.name[:-12] + "0" * 12) / "result.json").write_text(json.dumps(data))
    with pytest.raises(BenchError, match="re-scored twice"):
        agreement_frame(load_results(root, "synthcity"), "miou")
