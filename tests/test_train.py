import pytest
import torch

from bench.base.errors import BenchError
from bench.config import TrainConfig
from bench.train import TrainingDiverged, batch_stream, draw_batch, train
from losses import OBJECTIVES, build_objective
from losses.base import Objective
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


def test_loader_workers_deliver_the_batches_drawn_in_process_in_order():
    """Worker processes draw ahead (the DataLoader engine), from a resume point, and change no batch."""
    labels = torch.randint(0, 19, (5, 24, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    here = list(batch_stream(_images(), CFG, 3, 5, labels, workers=0))
    ahead = list(batch_stream(_images(), CFG, 3, 5, labels, workers=2))
    assert len(here) == len(ahead) == CFG.iterations - 5
    for a, b in zip(here, ahead, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(here[0], draw_batch(_images(), CFG, 3, 5, labels), strict=True))


def test_training_with_loader_workers_gives_the_same_weights(tmp_path):
    def run(path, workers):
        torch.manual_seed(0)
        model = build_backbone("ffdnet_small", width=8, depth=3)
        summary = train(model, build_objective("l1"), _images(), CFG, 0, path, torch.device("cpu"),
                        log=lambda *_: None, loader_workers=workers)
        return model, summary

    (a, sa), (b, sb) = run(tmp_path / "a.pth", 0), run(tmp_path / "b.pth", 2)
    assert (sa["loader_workers"], sb["loader_workers"]) == (0, 2)
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)


class _Stop(Exception):
    pass


class _RandomWeightL1(Objective):
    """Draws from the global RNG every step, as stochastic objectives (GAN, sampled patches) will."""

    def forward(self, restored, clean, batch=None):
        loss = (restored - clean).abs().mean() * (1.0 + torch.rand(()))
        return loss, {"l1": float(loss.detach())}


def _killable_run(path, objective, cfg, stop_at=None):
    """Train a tiny FFDNet from seed 0 with ``objective()``; "killed" (None) when iteration ``stop_at`` is reached."""
    torch.manual_seed(0)
    model = build_backbone("ffdnet_small", width=8, depth=3)

    def progress(i):
        if i == stop_at:
            raise _Stop

    try:
        train(model, objective(), _images(), cfg, 0, path, torch.device("cpu"), log=lambda *_: None, progress=progress)
    except _Stop:
        return None
    return model


@pytest.mark.parametrize("name", ["l1", "random_weight", "gan", "d2sm"])
def test_a_killed_run_resumes_to_identical_weights(tmp_path, name, loss_resources):
    """Stateful objectives too: the GAN's discriminator and optimiser, D2SM's queues."""
    def objective():
        return _RandomWeightL1() if name == "random_weight" else build_objective(name, loss_resources)

    full = _killable_run(tmp_path / "a.pth", objective, CFG)
    assert _killable_run(tmp_path / "b.pth", objective, CFG, stop_at=6) is None  # killed after the checkpoint at 4
    resumed = _killable_run(tmp_path / "b.pth", objective, CFG)
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

    def validate(denoiser):
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
    from bench.trained import load_trained_denoiser

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


def test_learning_rate_factors_follow_their_closed_forms():
    """Warm-up is linear to 1, multistep halves at the milestones, cosine reaches 0 at the last iteration."""
    import math

    from bench.train import lr_factor

    multi = TrainConfig(iterations=100, milestones=(0.5, 0.75), gamma=0.5, warmup=0.1)
    assert [lr_factor(multi, i) for i in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert [lr_factor(multi, i) for i in (10, 49, 50, 74, 75, 99)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    cos = TrainConfig(iterations=100, schedule="cosine", warmup=0.1)
    assert lr_factor(cos, 10) == 1.0
    assert lr_factor(cos, 55) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert lr_factor(cos, 100) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


def test_ema_weights_are_scored_and_equal_a_hand_computed_average(tmp_path):
    """With ema_decay, the model handed back (and rebuilt from the checkpoint) holds the moving average of the
    iterates, w_ema <- d w_ema + (1 - d) w, started at the first iterate (torch's AveragedModel); the last iterate
    stays in the checkpoint for resuming."""
    from bench.config import CellConfig
    from bench.trained import load_trained_denoiser

    cfg = TrainConfig(iterations=6, batch=2, crop=16, lr=1e-2, checkpoint_every=3, ema_decay=0.5)
    seen = []

    def progress(_):
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    torch.manual_seed(0)
    model = build_backbone("ffdnet_small", width=8, depth=3)
    train(model, build_objective("l1"), _images(), cfg, 0, tmp_path / "e.pth", torch.device("cpu"),
          log=lambda *_: None, progress=progress)
    ema = seen[0]
    for w in seen[1:]:
        ema = {k: 0.5 * ema[k] + 0.5 * w[k] for k in ema}
    for k, v in model.state_dict().items():
        assert torch.allclose(v, ema[k], atol=1e-6), k
    assert not torch.equal(model.state_dict()["body.0.weight"], seen[-1]["body.0.weight"])
    cell = CellConfig(suite="synthcity", backbone="ffdnet_small", objective="l1", train=cfg, test_sigmas=(25.0,),
                      seed=0, backbone_kwargs=(("depth", 3), ("in_channels", 3), ("width", 8))).to_dict()
    loaded = load_trained_denoiser(cell, tmp_path / "e.pth")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


@pytest.mark.parametrize("levers", [{"ema_decay": 0.9, "schedule": "cosine", "warmup": 0.2, "grad_clip": 0.05},
                                    {"precision": "bf16"}])
def test_a_killed_run_resumes_exactly_with_every_lever(tmp_path, levers):
    """EMA state, warm-up/cosine schedule, clipping and bf16 autocast all survive a kill and resume."""
    cfg = TrainConfig(iterations=12, batch=2, crop=16, lr=1e-3, checkpoint_every=4, **levers)

    full = _killable_run(tmp_path / "a.pth", lambda: build_objective("l1"), cfg)
    assert _killable_run(tmp_path / "b.pth", lambda: build_objective("l1"), cfg, stop_at=6) is None
    resumed = _killable_run(tmp_path / "b.pth", lambda: build_objective("l1"), cfg)
    for x, y in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_gradient_clipping_bounds_the_gradient_the_optimiser_sees(tmp_path, monkeypatch):
    """With grad_clip, Adam steps on a gradient whose global norm is the bound (the raw one is far larger)."""
    norms = []

    class _Large(Objective):
        def forward(self, restored, clean, batch=None):
            loss = (restored - clean).abs().mean() * 1e3
            return loss, {"l1": float(loss.detach())}

    orig_step = torch.optim.Adam.step

    def step(self, *a, **k):
        norms.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))))
        return orig_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    for clip in (0.0, 1e-3):
        cfg = TrainConfig(iterations=1, batch=2, crop=16, lr=1e-3, checkpoint_every=1, grad_clip=clip)
        torch.manual_seed(0)
        model = build_backbone("ffdnet_small", width=8, depth=3)
        train(model, _Large(), _images(), cfg, 0, tmp_path / f"c{clip}.pth", torch.device("cpu"), log=lambda *_: None)
    assert norms[0] > 1.0 and norms[1] == pytest.approx(1e-3, rel=1e-4)


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective_trains_under_bf16_with_finite_losses(tmp_path, name, loss_resources):
    """bf16 autocast is what "auto" picks on CPUs with native bf16: no objective may overflow under it."""
    cfg = TrainConfig(iterations=3, batch=2, crop=32, lr=1e-3, checkpoint_every=3, precision="bf16")
    torch.manual_seed(0)
    summary = train(build_backbone("ffdnet_small", width=8, depth=3), build_objective(name, loss_resources),
                    _images().repeat(1, 1, 2, 2), cfg, 0, tmp_path / "b.pth", torch.device("cpu"), log=lambda *_: None,
                    labels=torch.zeros(5, 48, 64, dtype=torch.uint8))
    assert summary["iterations_run"] == 3


def test_ssim_under_bf16_autocast_is_the_fp32_ssim():
    from bench.metrics import ssim

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = ssim(x.bfloat16(), y)
    assert inside.dtype == torch.float32
    assert torch.allclose(inside, ssim(x.bfloat16().float(), y), atol=1e-6)


def test_checkpoints_come_by_time_as_well_as_by_iterations(tmp_path, monkeypatch):
    import bench.train as train_module

    saved = []
    original = train_module.save_checkpoint
    monkeypatch.setattr(train_module, "save_checkpoint",
                        lambda state, path, objective=None, extra=None: (saved.append(state.iteration),
                                                                          original(state, path, objective, extra)))
    cfg = TrainConfig(iterations=4, batch=2, crop=16, lr=1e-3, checkpoint_every=1000)
    train(build_backbone("ffdnet_small", width=8, depth=3), build_objective("l1"), _images(), cfg, 0,
          tmp_path / "t.pth", torch.device("cpu"), log=lambda *_: None, checkpoint_minutes=0.0)
    assert saved == [1, 2, 3, 4]  # every iteration is "due" at 0 minutes
    saved.clear()
    train(build_backbone("ffdnet_small", width=8, depth=3), build_objective("l1"), _images(), cfg, 0,
          tmp_path / "u.pth", torch.device("cpu"), log=lambda *_: None)
    assert saved == [4]  # the default 10 minutes never came: only the last iteration
