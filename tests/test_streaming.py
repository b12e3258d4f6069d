"""Training crops streamed from the decoded on-disk cache are the in-memory crops, bit for bit."""
import torch

from bench.base.data import SplitData
from bench.config import TrainConfig
from bench.streaming import decoded_split
from bench.train import draw_batch


def test_streamed_batches_equal_in_memory_batches(tmp_path):
    from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity

    root = ensure_synthcity(SynthcitySpec(height=32, width=64, n_train=6, n_val=2), root=tmp_path / "data",
                            workers=1, log=lambda *_: None)
    split = SplitData(root, "train", cache=False)
    images = torch.stack([split[i][0] for i in range(len(split))])
    labels = torch.stack([split[i][1] for i in range(len(split))])
    logs = []
    views = decoded_split(split.samples, tmp_path / "decoded", logs.append)
    assert views[0].shape == images.shape and torch.equal(views[0][2], images[2])
    cfg = TrainConfig(batch=4, crop=16)
    for it in range(5):
        a, b = draw_batch(images, cfg, 3, it, labels), draw_batch(views[0], cfg, 3, it, views[1])
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    again = decoded_split(split.samples, tmp_path / "decoded", logs.append)  # built once: later runs open it
    assert len([m for m in logs if "decoding" in m]) == 1 and torch.equal(again[1][0], labels[0])


def test_images_of_different_sizes_train_and_score(tmp_path):
    """A split that mixes sizes: decoded into one flat cache, crops drawn inside each image, scored in runs of one
    size; the crops are the images' own pixels."""
    import numpy as np
    from PIL import Image

    from bench.base.data import list_split
    from bench.evaluate import evaluate, identity_restore
    from bench.streaming import decoded

    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 64), (48, 80), (40, 64), (56, 56)]):
        for split in ("train", "val"):
            img_dir, gt_dir = tmp_path / "leftImg8bit" / split / "c", tmp_path / "gtFine" / split / "c"
            img_dir.mkdir(parents=True, exist_ok=True)
            gt_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img_dir / f"c_{i:06d}_000019_leftImg8bit.png")
            Image.fromarray(rng.integers(0, 19, (h, w), dtype=np.uint8)).save(gt_dir / f"c_{i:06d}_000019_gtFine_labelTrainIds.png")
    train = decoded(tmp_path, "train", tmp_path / "cache", log=lambda *_: None)
    assert train.images.shape == (4, 3, 40, 56) and train.image_size(1) == (3, 48, 80)
    originals = [SplitData(tmp_path, "train")[i] for i in range(4)]
    assert all(torch.equal(train[i][0], originals[i][0]) and torch.equal(train[i][1], originals[i][1]) for i in range(4))
    clean, noisy, sigma, labels = draw_batch(train.images, TrainConfig(batch=6, crop=32), 0, 1, train.labels)
    assert clean.shape == (6, 3, 32, 32) and labels.shape == (6, 32, 32)

    class Seg:
        def predict(self, u8):
            return (u8[:, 0] // 16).long().clamp(max=18)

    val = decoded(tmp_path, "val", tmp_path / "cache", log=lambda *_: None)
    m = evaluate(identity_restore, val, (25.0,), 0, Seg(), torch.device("cpu"), batch=4)["25"]
    assert len(m["per_image"]["psnr"]) == 4 and list_split(tmp_path, "val")[0].image_id == m["per_image"]["ids"][0]


def test_a_damaged_decoded_cache_is_refused_where_it_is_read(tmp_path):
    """The hostile probe: half of the decoded images overwritten with 255 used to be scored (4.37 dB instead of 7.22,
    exit 0). The manifest records each array's sha256; a process checks them once when it opens the cache. A cache
    written before the checksums existed is rebuilt."""
    import json

    import pytest

    from bench import streaming
    from bench.base.errors import BenchError
    from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity

    root = ensure_synthcity(SynthcitySpec(height=32, width=64, n_train=2, n_val=4), root=tmp_path / "data",
                            workers=1, log=lambda *_: None)
    split = SplitData(root, "val", cache=False)
    cache = tmp_path / "decoded"
    images, _ = decoded_split(split.samples, cache, lambda *_: None)
    [folder] = [p for p in cache.iterdir() if p.is_dir()]
    meta = json.loads((folder / "manifest.json").read_text())
    assert set(meta["sha256"]) == {"images.npy", "labels.npy"}
    good = images[0].clone()
    raw = bytearray((folder / "images.npy").read_bytes())
    half = len(raw) // 2
    raw[half:] = b"\xff" * (len(raw) - half)  # the second half of the pixels set to 255
    (folder / "images.npy").write_bytes(bytes(raw))
    streaming._VERIFIED.clear()  # a new process
    with pytest.raises(BenchError, match="is damaged \\(images.npy differs from the sha256 its manifest recorded\\); "
                                         "delete the folder to rebuild it"):
        decoded_split(split.samples, cache, lambda *_: None)
    del meta["sha256"]  # an older cache: no checksums, so it is rebuilt from the images
    (folder / "manifest.json").write_text(json.dumps(meta))
    logs = []
    again, _ = decoded_split(split.samples, cache, logs.append)
    assert any("rebuilding" in m for m in logs) and torch.equal(again[0], good)
