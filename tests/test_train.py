import pytest
import torch

from bench.config import TrainConfig
from bench.errors import BenchError
from bench.train import TrainingDiverged, draw_batch, train
from losses import build_objective
from losses.registry import Objective
from models import build_backbone

CFG = TrainConfig(iterations=12, batch=2, crop=16, lr=1e-3, checkpoint_every=4)


def _images():
    return torch.randint(0, 256, (5, 3, 24, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_batches_are_a_function_of_seed_and_iteration():
    a, b = draw_batch(_images(), CFG, 0, 7), draw_batch(_images(), CFG, 0, 7)
    assert all(torch.equal(x, y) for x, y in zip(a[:3], b[:3], strict=True))
    assert not torch.equal(a[1], draw_batch(_images(), CFG, 0, 8)[1])
    clean, noisy, sigma, labels = a
    assert labels is None
    assert clean.shape == (2, 3, 16, 16) and sigma.shape == (2,)


class _Stop(Exception):
    pass


class _RandomWeightL1(Objective):
    """Draws from the global RNG every step, as stochastic objectives (GAN, sampled patches) will."""

    def forward(self, restored, clean, batch=None):
        loss = (restored - clean).abs().mean() * (1.0 + torch.rand(()))
        return loss, {"l1": float(loss.detach())}


@pytest.mark.parametrize("name", ["l1", "random_weight", "gan", "d2sm"])
def test_a_killed_run_resumes_to_identical_weights(tmp_path, name, loss_resources):
    """Stateful objectives too: the GAN's discriminator and optimiser, D2SM's queues."""
    def objective():
        return _RandomWeightL1() if name == "random_weight" else build_objective(name, loss_resources)

    def run(path, stop_at=None):
        torch.manual_seed(0)
        model = build_backbone("ffdnet_small", width=8, depth=3)

        def progress(i):
            if i == stop_at:
                raise _Stop

        try:
            train(model, objective(), _images(), CFG, 0, path, torch.device("cpu"), log=lambda *_: None,
                  progress=progress)
        except _Stop:
            return None
        return model

    full = run(tmp_path / "a.pth")
    assert run(tmp_path / "b.pth", stop_at=6) is None  # killed after the checkpoint at 4
    resumed = run(tmp_path / "b.pth")
    for x, y in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(x, y)


class _NaN(Objective):
    def forward(self, restored, clean, batch=None):
        return restored.mean() * float("nan"), {}


def test_nan_loss_stops_training_with_a_clear_error(tmp_path):
    with pytest.raises(TrainingDiverged, match="loss is nan at iteration 1"):
        train(build_backbone("ffdnet_small", width=8, depth=3), _NaN(), _images(), CFG, 0, tmp_path / "c.pth",
              torch.device("cpu"), log=lambda *_: None)


def test_corrupt_training_checkpoint_is_reported(tmp_path):
    (tmp_path / "d.pth").write_bytes(b"garbage")
    with pytest.raises(BenchError, match="corrupt"):
        train(build_backbone("ffdnet_small", width=8, depth=3), build_objective("l1"), _images(), CFG, 0,
              tmp_path / "d.pth", torch.device("cpu"), log=lambda *_: None)


def test_validation_curve_is_recorded_and_survives_a_resume(tmp_path):
    """Points every val_every iterations; the ones before a kill come back from the checkpoint."""
    calls = []

    def validate():
        calls.append(1)
        return {"psnr": float(len(calls)), "miou": 0.5}

    def run(stop_at=None):
        torch.manual_seed(0)
        model = build_backbone("ffdnet_small", width=8, depth=3)

        def progress(i):
            if i == stop_at:
                raise _Stop

        return train(model, build_objective("l1"), _images(), CFG, 0, tmp_path / "v.pth", torch.device("cpu"),
                     log=lambda *_: None, progress=progress, validate=validate, val_every=4)

    with pytest.raises(_Stop):
        run(stop_at=6)
    summary = run()
    assert [p["iteration"] for p in summary["curve"]] == [4, 8, 12]
    assert summary["curve"][0]["psnr"] == 1.0 and all(p["miou"] == 0.5 for p in summary["curve"])


def test_a_trained_cell_is_rebuilt_from_its_config_and_checkpoint(tmp_path):
    """The weights come back exactly; another cell's configuration or a garbage file is refused."""
    from bench.config import CellConfig
    from bench.train import load_trained_denoiser

    kwargs = (("depth", 3), ("in_channels", 3), ("width", 8))
    cell = CellConfig(suite="synthcity", backbone="ffdnet_small", objective="l1", train=CFG, test_sigmas=(25.0,),
                      seed=0, backbone_kwargs=kwargs).to_dict()
    torch.manual_seed(0)
    model = build_backbone("ffdnet_small", width=8, depth=3)
    train(model, build_objective("l1"), _images(), CFG, 0, tmp_path / "t.pth", torch.device("cpu"), log=lambda *_: None)
    loaded = load_trained_denoiser(cell, tmp_path / "t.pth")
    assert not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    wider = {**cell, "backbone_kwargs": [["depth", 3], ["in_channels", 3], ["width", 16]]}
    with pytest.raises(BenchError, match="does not match its cell"):
        load_trained_denoiser(wider, tmp_path / "t.pth")
    (tmp_path / "g.pth").write_bytes(b"garbage")
    with pytest.raises(BenchError, match="corrupt"):
        load_trained_denoiser(cell, tmp_path / "g.pth")
