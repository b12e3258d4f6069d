import pytest
import torch

from bench.base.registry import UnknownNameError
from losses import OBJECTIVES, build_objective

PIXEL = ["l1", "ssim"]


@pytest.mark.parametrize("name", PIXEL)
def test_sign_zero_at_identity_and_grows_with_noise(name):
    torch.manual_seed(0)
    obj = build_objective(name)
    clean = torch.rand(2, 3, 32, 32)
    zero, _ = obj(clean, clean)
    small, _ = obj(clean + 0.02 * torch.randn_like(clean), clean)
    large, _ = obj(clean + 0.2 * torch.randn_like(clean), clean)
    assert abs(float(zero)) < 1e-6 < float(small) < float(large)


@pytest.mark.parametrize("name", PIXEL)
def test_gradient_is_finite_and_nonzero(name):
    torch.manual_seed(0)
    obj = build_objective(name)
    clean = torch.rand(2, 3, 32, 32)
    restored = (clean + 0.1 * torch.randn_like(clean)).requires_grad_()
    loss, terms = obj(restored, clean)
    loss.backward()
    assert torch.isfinite(restored.grad).all() and restored.grad.abs().sum() > 0
    assert set(terms) >= {"l1"}


def test_ssim_objective_is_l1_plus_weighted_dssim():
    from bench.metrics import ssim

    torch.manual_seed(0)
    clean, restored = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    total, _ = build_objective("ssim", weight=0.5)(restored, clean)
    expected = (restored - clean).abs().mean() + 0.5 * (1 - ssim(restored, clean).mean())
    assert torch.allclose(total, expected)


def test_registry_lists_and_suggests():
    assert {"l1", "ssim"} <= set(OBJECTIVES.names())
    with pytest.raises(UnknownNameError, match="did you mean 'ssim'"):
        build_objective("sim")


def test_cbdnet_noise_estimate_terms():
    """Asymmetric: under-estimation costs (1 - alpha)/alpha times more; TV: zero for a flat map."""
    from losses.noise_estimate import asymmetric_loss, total_variation

    sigma = torch.tensor([0.2])
    under, over = torch.full((1, 3, 4, 4), 0.1), torch.full((1, 3, 4, 4), 0.3)
    assert float(asymmetric_loss(under, sigma)) == pytest.approx(0.7 * 0.01)
    assert float(asymmetric_loss(over, sigma)) == pytest.approx(0.3 * 0.01)
    assert float(total_variation(over)) == 0.0 and float(total_variation(torch.rand(1, 3, 4, 4))) > 0


def test_l1_with_cbdnet_terms_reads_the_backbones_estimate():
    from models import build_backbone

    torch.manual_seed(0)
    net = build_backbone("cbdnet_small")
    clean = torch.rand(2, 3, 16, 16)
    restored = net.restore(clean + 0.1 * torch.randn_like(clean), torch.tensor([0.1, 0.1]))
    obj = build_objective("l1", asymmetric_weight=0.5, tv_weight=0.05)
    loss, terms = obj(restored, clean, {"sigma": torch.tensor([0.1, 0.1]), "extras": net.extras()})
    loss.backward()
    assert terms["asymmetric"] > 0 and "tv" in terms
    assert net.estimator[0].weight.grad.abs().sum() > 0  # the estimator learns from its own terms
    with pytest.raises(ValueError, match="noise estimate"):
        obj(clean, clean, {"sigma": torch.tensor([0.1, 0.1]), "extras": {}})
