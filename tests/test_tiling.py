"""Restoration in bounded memory: tiles with overlap give the whole-image result; batch size from image size."""
import pytest
import torch

from bench.tiling import auto_batch, restore_tiled


@pytest.mark.parametrize("name", ["ffdnet_small", "cbdnet_small", "sadnet_small"])
def test_tiled_restoration_equals_the_whole_image(name):
    from models import build_backbone

    torch.manual_seed(0)
    model = build_backbone(name).eval()
    x = torch.rand(2, 3, 160, 232)  # not a multiple of the tile: edge tiles are partial
    sigma = torch.full((2,), 25 / 255)
    with torch.no_grad():
        whole = model.restore(x, sigma)
        tiled = restore_tiled(model.restore, x, sigma, tile=64)
    assert (tiled - whole).abs().max() < 1e-4


def test_restoration_batch_follows_the_image_size():
    assert auto_batch(128, 256) == 8 and auto_batch(1024, 2048) == 1 and auto_batch(4096, 4096) == 1
    assert auto_batch(512, 1024) == 4


def test_scoring_with_tiles_and_one_image_per_batch_gives_the_same_numbers(tmp_path):
    from bench.evaluate import evaluate, identity_restore

    class Seg:
        def predict(self, u8):
            return (u8[:, 0] // 16).long().clamp(max=18)

    import numpy as np
    from PIL import Image

    for i in range(3):
        for kind, arr in (("leftImg8bit", np.random.default_rng(i).integers(0, 256, (48, 80, 3), dtype=np.uint8)),
                          ("gtFine", np.random.default_rng(i).integers(0, 19, (48, 80), dtype=np.uint8))):
            d = tmp_path / kind / "val" / "c"
            d.mkdir(parents=True, exist_ok=True)
            suffix = "_leftImg8bit.png" if kind == "leftImg8bit" else "_gtFine_labelTrainIds.png"
            Image.fromarray(arr).save(d / f"c_{i:06d}_000019{suffix}")
    from bench.base.data import SplitData

    val = SplitData(tmp_path, "val")
    blur = lambda x, s: torch.nn.functional.avg_pool2d(x, 3, 1, 1)  # noqa: E731 - a local restorer
    a = evaluate(blur, val, (25.0,), 0, Seg(), torch.device("cpu"))
    b = evaluate(blur, val, (25.0,), 0, Seg(), torch.device("cpu"), batch=1, tile=16)
    assert a["25"]["per_image"]["psnr"] == pytest.approx(b["25"]["per_image"]["psnr"], abs=1e-4)
    assert a["25"]["miou"] == b["25"]["miou"]
    assert evaluate(identity_restore, val, (25.0,), 0, Seg(), torch.device("cpu"), batch=2)["25"]["psnr"] == \
        pytest.approx(evaluate(identity_restore, val, (25.0,), 0, Seg(), torch.device("cpu"))["25"]["psnr"])
