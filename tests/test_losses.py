import pytest
import torch

from bench.registry import UnknownNameError
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
    total, _ = build_objective("ssim", ssim_weight=0.5)(restored, clean)
    expected = (restored - clean).abs().mean() + 0.5 * (1 - ssim(restored, clean).mean())
    assert torch.allclose(total, expected)


def test_registry_lists_and_suggests():
    assert {"l1", "ssim"} <= set(OBJECTIVES.names())
    with pytest.raises(UnknownNameError, match="did you mean 'ssim'"):
        build_objective("sim")
