"""The metric registry: each built-in against an independent reference, the one compute path, plugins, schema 3."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.evaluate import evaluate, identity_restore
from bench.metrics import METRICS, MetricBatch, MetricEnv, ms_ssim, register_metric

FIXTURES = Path(__file__).parent / "fixtures"


def test_ms_ssim_matches_pytorch_msssim():
    from pytorch_msssim import ms_ssim as reference

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 128, 256, generator=g)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(clean, 5, 1, 2)
    for other in (noisy, blurred):
        ours = ms_ssim(other, clean)
        ref = reference(other, clean, data_range=1.0, size_average=False, win_size=7)
        assert torch.allclose(ours, ref, atol=1e-5), (ours, ref)
    assert torch.allclose(ms_ssim(clean, clean), torch.ones(3), atol=1e-6)
    with pytest.raises(ValueError, match="above 96 px"):
        ms_ssim(clean[..., :96, :], clean[..., :96, :])


def _confusion_miou(pred: np.ndarray, ref: np.ndarray, k: int = 19, ignore: int = 255) -> float:
    """mIoU from a confusion matrix (numpy only): an implementation independent of mmseg's helpers."""
    keep = ref != ignore
    cm = np.bincount(ref[keep].astype(np.int64) * k + pred[keep], minlength=k * k).reshape(k, k)
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - inter
    return float((inter[union > 0] / union[union > 0]).mean())


class _Seg:
    """A deterministic stand-in segmenter for scoring tests: class = red channel // 14."""

    def predict(self, u8):
        return (u8[:, 0].long() // 14).clamp(max=18)


def _val(tmp_path, n=3, size=(112, 144)):
    from bench.base.data import SplitData

    for i in range(n):
        rng = np.random.default_rng(i)
        img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(img).resize(size[::-1]).filter(__import__("PIL.ImageFilter").ImageFilter.BoxBlur(3)))
        lab = rng.integers(0, 19, size, dtype=np.uint8)
        lab[:8] = 255
        for kind, arr, suffix in (("leftImg8bit", img, "_leftImg8bit.png"), ("gtFine", lab, "_gtFine_labelTrainIds.png")):
            d = tmp_path / kind / "val" / "c"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(d / f"c_{i:06d}_000019{suffix}")
    return SplitData(tmp_path, "val")


def test_every_builtin_through_the_one_compute_path(tmp_path, loss_resources):
    from pytorch_msssim import ms_ssim as ref_ms_ssim
    from skimage.metrics import peak_signal_noise_ratio

    from bench.base.noise import eval_noise, quantize, to_unit

    val = _val(tmp_path)
    names = ("psnr", "ssim", "ms_ssim", "lpips", "miou", "semantic_consistency")
    out = evaluate(identity_restore, val, (25.0,), 0, _Seg(), torch.device("cpu"), metrics=names,
                   resources=loss_resources)["25"]
    clean_out = evaluate(None, val, (), 0, _Seg(), torch.device("cpu"), metrics=names, resources=loss_resources)["clean"]
    per = out["per_image"]
    assert set(names) <= set(out) and per["ids"] == [s.image_id for s in val.samples]
    lpips_net = loss_resources.get("lpips")
    preds, refs, clean_preds = [], [], []
    for i in range(len(val)):
        clean_u8, label = val[i]
        clean = to_unit(clean_u8)
        noisy_u8 = quantize(clean + eval_noise(val.samples[i].image_id, 25.0, 0, tuple(clean.shape)))
        x, y = to_unit(noisy_u8)[None], clean[None]
        assert per["psnr"][i] == pytest.approx(peak_signal_noise_ratio(y[0].double().numpy(), x[0].double().numpy(),
                                                                      data_range=1.0), abs=1e-4)
        assert per["ms_ssim"][i] == pytest.approx(float(ref_ms_ssim(x, y, data_range=1.0, win_size=7)), abs=1e-5)
        assert per["lpips"][i] == pytest.approx(float(lpips_net(x, y)), rel=1e-5)
        preds.append(_Seg().predict(noisy_u8[None])[0].numpy())
        clean_preds.append(_Seg().predict(clean_u8[None])[0].numpy())
        refs.append(label.numpy())
    assert out["psnr"] == pytest.approx(np.mean(per["psnr"]))
    assert out["miou"] == pytest.approx(_confusion_miou(np.concatenate(preds).ravel(), np.concatenate(refs).ravel()))
    sc = _confusion_miou(np.concatenate(preds).ravel(), np.concatenate(clean_preds).ravel(), ignore=-1)
    assert out["semantic_consistency"] == pytest.approx(sc) and sc < 1
    # the clean images score perfectly on every full-reference and consistency metric
    assert clean_out["semantic_consistency"] == 1.0 and clean_out["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert clean_out["ms_ssim"] == pytest.approx(1.0, abs=1e-6)
    # only mIoU keeps the schema-2 keys; the other iou-kind metric's are named after it
    assert {"intersect", "union", "semantic_consistency.intersect"} <= set(per)
    assert "semantic_consistency.per_class_iou" in out and "per_class_iou" in out


def test_the_segmenter_runs_only_for_metrics_that_need_it(tmp_path):
    calls = []

    class Counting(_Seg):
        def predict(self, u8):
            calls.append(len(u8))
            return super().predict(u8)

    val = _val(tmp_path)
    evaluate(identity_restore, val, (25.0,), 0, Counting(), torch.device("cpu"), metrics=("psnr", "ssim"))
    assert calls == []
    evaluate(identity_restore, val, (25.0,), 0, Counting(), torch.device("cpu"), metrics=("miou",))
    assert sum(calls) == len(val)
    calls.clear()
    evaluate(identity_restore, val, (25.0,), 0, Counting(), torch.device("cpu"), metrics=("semantic_consistency",))
    assert sum(calls) == 2 * len(val)  # restored and clean


def test_a_plugin_metric_is_one_function(tmp_path):
    from bench.base.errors import BenchError

    @register_metric("mean_abs_error", higher_is_better=False, range=(0.0, 1.0), head="MAE", digits=5)
    def mae(batch: MetricBatch, env: MetricEnv) -> torch.Tensor:
        """Mean absolute error per image."""
        return (batch.restored - batch.clean).abs().flatten(1).mean(1)

    assert "mean_abs_error" in METRICS.names() and METRICS["mean_abs_error"].description == "Mean absolute error per image."
    val = _val(tmp_path)
    out = evaluate(identity_restore, val, (25.0,), 0, _Seg(), torch.device("cpu"), metrics=("mean_abs_error",))["25"]
    assert 0 < out["mean_abs_error"] < 0.2 and len(out["per_image"]["mean_abs_error"]) == len(val)

    @register_metric("broken", higher_is_better=True, range=(0.0, 1.0))
    def broken(batch, env):
        return torch.zeros(3, 2)

    with pytest.raises(BenchError, match=r"metric broken returned a tensor of shape \(3, 2\) for 3 images"):
        evaluate(identity_restore, val, (25.0,), 0, _Seg(), torch.device("cpu"), metrics=("broken",))
    with pytest.raises(BenchError, match="did you mean 'ms_ssim'"):
        evaluate(identity_restore, val, (25.0,), 0, _Seg(), torch.device("cpu"), metrics=("ms_sim",))
    with pytest.raises(ValueError, match="kind"):
        register_metric("x", higher_is_better=True, range=(0, 1), kind="median")


def test_schema2_folders_report_byte_for_byte_as_before(tmp_path):
    """Folders written before metrics became a registry (schema 2): the table and its csv are the bytes the
    bench printed for them then (committed from the last schema-2 bench)."""
    from v2_fixture import GRID, SEEDS, write_v2_folder

    from bench.cli import main

    root = write_v2_folder(tmp_path)
    for fmt, expected in (("markdown", "paper-table2-schema2.md"), ("csv", "paper-table2-schema2.csv")):
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["report", "--grid", GRID, "--seeds", *map(str, SEEDS), "--results", str(root),
                         "--format", fmt]) == 0
        assert buf.getvalue() == (FIXTURES / "reports" / expected).read_text(), fmt


def test_grid_metrics_are_checked_and_kept_out_of_the_cell_hash(tmp_path):
    from bench.base.errors import BenchError
    from bench.grids import get_grid, grid_from_dict, load_grid_file

    smoke = get_grid("smoke")
    more = smoke.with_overrides(['metrics=["psnr","ms_ssim","miou"]'])
    assert more.metrics == ("psnr", "ms_ssim", "miou")
    assert [c.cell_hash() for c in more.cells("synthcity")] == [c.cell_hash() for c in smoke.cells("synthcity")]
    assert grid_from_dict(more.to_dict()).metrics == more.metrics
    f = tmp_path / "g.toml"
    f.write_text('backbones = ["ffdnet"]\nobjectives = ["l1"]\nmetrics = ["psnr", "lpip"]\n')
    with pytest.raises(BenchError, match="did you mean 'lpips'"):
        load_grid_file(f)
    f.write_text('backbones = ["ffdnet"]\nobjectives = ["l1"]\nmetrics = []\n')
    with pytest.raises(BenchError, match="non-empty list"):
        load_grid_file(f)


def test_result_files_of_schema3_name_their_metrics(tmp_path):
    from bench.base.errors import BenchError
    from bench.results import read_result, scored_metrics

    src = next((FIXTURES / "results" / "synthcity").glob("*/result.json"))
    r = read_result(src)
    assert r["schema"] == 3 and scored_metrics(r) == ["psnr", "ssim", "miou"]
    raw = json.loads(src.read_text())
    bad = {**raw, "schema": 3, "metric_info": {"psnr": "x", "ms_ssim": "y"}}
    path = tmp_path / "result.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(BenchError, match=r"field 'metrics\.25\.ms_ssim' is missing"):
        read_result(path)
    path.write_text(json.dumps({**raw, "schema": 3, "metric_info": {}}))
    with pytest.raises(BenchError, match="'metric_info' names no metric"):
        read_result(path)


def test_the_example_gmsd_plugin_matches_a_scipy_implementation():
    from scipy import ndimage

    from bench.plugins import load_plugins

    load_plugins([str(Path(__file__).parents[1] / "examples" / "gmsd.py")])
    g = torch.Generator().manual_seed(5)
    clean = torch.rand(2, 3, 64, 80, generator=g)
    noisy = (clean + 0.05 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    batch = MetricBatch(noisy, clean, noisy, clean, torch.zeros(2, 64, 80, dtype=torch.long))
    ours = METRICS["gmsd"].compute(batch, MetricEnv())

    def reference(x, y):  # Xue et al. 2014 with scipy: luminance, 2x2 mean pooling, Prewitt, valid region
        def lum(a):
            a = a.numpy().astype(np.float64)
            yy = 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]
            return yy.reshape(yy.shape[0] // 2, 2, yy.shape[1] // 2, 2).mean((1, 3))

        def grad(a):
            k = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0
            gx, gy = ndimage.correlate(a, k), ndimage.correlate(a, k.T)
            return np.hypot(gx, gy)[1:-1, 1:-1]

        c = 170.0 / 255.0**2
        md, mr = grad(lum(x)), grad(lum(y))
        return ((2 * mr * md + c) / (mr**2 + md**2 + c)).std()

    for i in range(2):
        assert float(ours[i]) == pytest.approx(reference(noisy[i], clean[i]), rel=1e-5)
    assert float(METRICS["gmsd"].compute(MetricBatch(clean, clean, clean, clean, batch.labels), MetricEnv())[0]) == 0
