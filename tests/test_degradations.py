"""The degradation registry: Gaussian keeps its bits and hashes, each built-in against its closed form, test inputs
as pure functions of (image id, level, seed), grids that train and score under other degradations."""
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from bench.base.noise import add_train_noise, draw_train_sigma, eval_noise
from bench.degradations import DEGRADATIONS, build_degradation
from bench.evaluate import input_generator


def test_gaussian_is_the_noise_cells_were_trained_and_scored_on():
    from bench.config import TrainConfig
    from bench.train import draw_batch

    clean = torch.rand(3, 40, 56)
    noisy, level = build_degradation("gaussian").draw_test(clean, 25.0, input_generator("img0", 25.0, 3))
    assert torch.equal(noisy, clean + eval_noise("img0", 25.0, 3, tuple(clean.shape)))
    assert level.dtype == torch.float32 and float(level) == np.float32(25 / 255)
    images = torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8)
    cfg = TrainConfig(batch=3, crop=32)
    clean_b, noisy_b, sigma_b, _ = draw_batch(images, cfg, 7, 5)
    from bench.base.crops import crop_generator, random_crops
    from bench.base.noise import to_unit

    g = crop_generator(7, 5)
    crops, _ = random_crops(images, None, 3, 32, g)
    sigma = draw_train_sigma(3, cfg.sigma_max, g)
    assert torch.equal(sigma_b, sigma) and torch.equal(noisy_b, add_train_noise(to_unit(crops), sigma, g))


def test_gaussian_cells_keep_their_hashes_and_others_get_their_own():
    import json
    from pathlib import Path

    from bench.grids import get_grid

    baseline = json.loads((Path(__file__).parents[1] / "results" / "baselines" / "smoke.json").read_text())
    smoke = get_grid("smoke")
    slugs = {k.split("|")[0] for k in baseline["values"]}
    assert slugs <= {c.slug() for c in smoke.cells("synthcity")}
    native = get_grid("paper-table2")
    pg = native.with_overrides(['train.degradation="poisson_gaussian"'])
    cells, gauss = pg.cells("synthcity"), native.cells("synthcity")
    assert all(c.cell_hash() != g.cell_hash() for c, g in zip(cells, gauss, strict=True))
    assert all("@poisson_gaussian__s" in c.slug() and c.group() == f"{c.backbone} @ poisson_gaussian" for c in cells)
    cross = native.with_overrides(['test_degradation="spatially_variant"'])
    c = cross.cells("synthcity")[0]
    assert c.slug().endswith("@gaussian-to-spatially_variant__s0") and c.label().endswith("(trained on gaussian)")
    assert c.scored_degradation == ("spatially_variant", ())


def test_poisson_gaussian_has_its_closed_form():
    from bench.degradations.builtin.poisson_gaussian import shot_read

    deg = build_degradation("poisson_gaussian")
    level = torch.tensor([25 / 255, 10 / 255])
    shot, read = shot_read(level, 2.18, 1.20)
    assert torch.allclose(0.5 * shot + read, level.double() ** 2, rtol=1e-12)
    assert torch.allclose(torch.log(read), 2.18 * torch.log(shot) + 1.20, rtol=1e-9)  # Brooks et al.'s relation
    for x in (0.1, 0.5, 0.9):  # variance shot * x + read: the std at mid-grey is the level
        clean = torch.full((3, 256, 256), x)
        noisy, noise_map = deg.draw_test(clean, 25.0, torch.Generator().manual_seed(1))
        want = math.sqrt(float(shot[0]) * x + float(read[0]))
        assert float((noisy - clean).std()) == pytest.approx(want, rel=0.02)
        assert float(noise_map.mean()) == pytest.approx(want, rel=0.05) and noise_map.shape == (1, 256, 256)
    assert float(shot_read(torch.tensor([0.0]), 2.18, 1.2)[0]) == pytest.approx(0.0, abs=1e-12)


def test_spatially_variant_follows_its_map_and_jpeg_is_pillows():
    deg = build_degradation("spatially_variant", {"low": 0.5, "high": 1.5})
    clean = torch.full((3, 128, 128), 0.5)
    noisy, std = deg.draw_test(clean, 30.0, torch.Generator().manual_seed(2))
    assert std.shape == (1, 128, 128) and 0.5 * 30 / 255 - 1e-7 <= float(std.min()) <= float(std.max()) <= 1.5 * 30 / 255 + 1e-7
    z = (noisy - clean) / std  # the noise divided by its map is white unit noise
    assert float(z.std()) == pytest.approx(1.0, rel=0.02)
    jpeg = build_degradation("gaussian_jpeg", {"quality": 40})
    clean = torch.rand(3, 64, 64)
    out, level = jpeg.draw_test(clean, 15.0, torch.Generator().manual_seed(3))
    pre = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(3)) * (15 / 255)
    u8 = (pre.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=40)
    ref = torch.from_numpy(np.asarray(Image.open(buf).convert("RGB")).copy()).permute(2, 0, 1).float() / 255
    assert torch.equal(out, ref) and float(level) == pytest.approx(15 / 255)


@pytest.mark.parametrize("name", ["poisson_gaussian", "spatially_variant", "gaussian_jpeg"])
def test_test_inputs_do_not_depend_on_the_batch(tmp_path, name):
    from test_metric_registry import _Seg, _val

    from bench.evaluate import evaluate, identity_restore

    val = _val(tmp_path)
    deg = build_degradation(name)
    a = evaluate(identity_restore, val, (25.0,), 0, _Seg(), torch.device("cpu"), batch=1, degradation=deg)["25"]
    b = evaluate(identity_restore, val, (25.0,), 0, _Seg(), torch.device("cpu"), batch=3, degradation=deg)["25"]
    assert a["per_image"]["psnr"] == b["per_image"]["psnr"] and a["miou"] == b["miou"]
    g = evaluate(identity_restore, val, (25.0,), 0, _Seg(), torch.device("cpu"))["25"]
    assert a["per_image"]["psnr"] != g["per_image"]["psnr"]


def test_bad_degradations_are_one_line(tmp_path):
    from bench.base.errors import BenchError
    from bench.grids import get_grid, load_grid_file

    with pytest.raises(BenchError, match="did you mean 'poisson_gaussian'"):
        get_grid("paper-table2").with_overrides(['train.degradation="poison_gaussian"'])
    with pytest.raises(BenchError, match="parameter of gaussian_jpeg"):
        build_degradation("gaussian_jpeg", {"qualty": 3})
    with pytest.raises(BenchError, match="quality must be in"):
        build_degradation("gaussian_jpeg", {"quality": 300})
    f = tmp_path / "g.toml"
    f.write_text('backbones = ["ffdnet"]\nobjectives = ["l1"]\n[train]\ndegradation = "gaussian_jpeg"\n'
                 'degradation_params = 5\n')
    with pytest.raises(BenchError, match="degradation_params"):
        load_grid_file(f)
    f.write_text('backbones = ["ffdnet"]\nobjectives = ["l1"]\n[train]\narithmetic = "exact"\n'
                 'degradation = "poisson_gaussian"\n')
    with pytest.raises(BenchError, match="gaussian degradation only"):
        load_grid_file(f)
    assert DEGRADATIONS.names()[:4] == ["gaussian", "poisson_gaussian", "spatially_variant", "gaussian_jpeg"]


def test_noise_map_backbones_take_per_pixel_maps():
    from models import build_backbone

    net = build_backbone("ffdnet_small").eval()
    x = torch.rand(2, 3, 33, 47)
    scalar = torch.tensor([0.1, 0.2])
    as_map = scalar.view(-1, 1, 1, 1).expand(2, 1, 33, 47).contiguous()
    with torch.no_grad():
        assert torch.allclose(net.restore(x, scalar), net.restore(x, as_map), atol=1e-6)
