"""Training crops streamed from the decoded on-disk cache are the in-memory crops, bit for bit."""
import torch

from bench.config import TrainConfig
from bench.data import SplitData
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
