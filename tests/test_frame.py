"""Results as pandas frames: one call for a notebook, exported as csv/parquet and read back equal."""
import json

import numpy as np
import pandas as pd
import pytest

from bench.frame import frame, image_frame, read_export
from bench.results import CellResult, write_result


def _write(root, objective, seed, psnr, areas=True):
    ids = [f"img{i}" for i in range(4)]
    per = {"ids": ids, "psnr": [psnr - 0.1, psnr + 0.1, psnr, psnr], "ssim": [0.9] * 4}
    if areas:
        per |= {"intersect": np.full((4, 19), 5).tolist(), "union": np.full((4, 19), 10).tolist()}
    metrics = {"25": {"psnr": psnr, "ssim": 0.9, "miou": 0.5, "per_image": per}}
    cell_id = f"{objective}{seed}"
    write_result(root / "synthcity" / f"ffdnet_small__{objective}__s{seed}-{cell_id}", CellResult(
        cell_id=cell_id, slug=f"ffdnet_small__{objective}__s{seed}", label=objective,
        config={"backbone": "ffdnet_small", "objective": objective}, metrics=metrics, train={},
        objective_params={"weight": 0.5}, seed=seed, precision="fp32", weights={}, env={}, created="2026",
        metric_info={m: m for m in ("psnr", "ssim", "miou")}))


def test_frame_is_tidy_and_image_frame_keeps_the_areas(tmp_path):
    _write(tmp_path, "l1", 0, 30.0)
    _write(tmp_path, "ssim", 1, 31.0, areas=False)
    df = frame(tmp_path)
    assert len(df) == 2 * 3 and set(df.metric) == {"psnr", "ssim", "miou"}
    assert df.groupby("label")["value"].count().to_dict() == {"l1": 3, "ssim": 3}
    assert json.loads(df.params.iloc[0]) == {"weight": 0.5}
    assert not df[(df.label == "ssim") & (df.metric == "miou")].resamplable.item()  # no per-image areas
    images = image_frame(tmp_path)
    assert len(images) == 8 and images["intersect.road"].iloc[0] == 5
    assert images[images.label == "ssim"]["intersect.road"].isna().all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_reads_back_equal(tmp_path, fmt):
    from bench.cli import main

    _write(tmp_path / "runs", "l1", 0, 30.0)
    _write(tmp_path / "runs", "ssim", 0, 31.0)
    assert main(["export", "--results", str(tmp_path / "runs"), "--format", fmt, "--out", str(tmp_path / "out")]) == 0
    for name, expected in (("results", frame(tmp_path / "runs")), ("images", image_frame(tmp_path / "runs"))):
        back = read_export(tmp_path / "out" / f"{name}.{fmt}")
        pd.testing.assert_frame_equal(back, expected, check_dtype=False)


def test_a_copy_of_a_cell_folder_is_not_read_as_a_result(tmp_path):
    import shutil

    from bench.results import load_results

    _write(tmp_path, "l1", 0, 30.0)
    [folder] = (tmp_path / "synthcity").iterdir()
    shutil.copytree(folder, folder.with_name(folder.name + ".bak"))
    assert [r["_path"] for r in load_results(tmp_path, "synthcity")] == [str(folder / "result.json")]
