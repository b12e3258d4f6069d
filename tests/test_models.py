import pytest
import torch

from bench.base.registry import UnknownNameError
from models import BACKBONES, build_backbone

ALL = ["ffdnet", "ffdnet_small", "ffdnet_tiny", "cbdnet", "cbdnet_small", "sadnet", "sadnet_small"]


@pytest.mark.parametrize(("name", "count"), [("ffdnet", 852_108), ("cbdnet", 4_365_382), ("sadnet", 4_234_723)])
def test_published_configurations_have_their_parameter_counts(name, count):
    """FFDNet: the D2SM authors' config; CBDNet ~4.37 M and SADNet ~4.23 M as published."""
    assert sum(p.numel() for p in build_backbone(name).parameters()) == count


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("hw", [(32, 32), (33, 47), (17, 20)])
def test_shapes_and_gradients(name, hw):
    from models.sadnet import ModulatedDeformConv

    torch.manual_seed(0)
    m = build_backbone(name)
    x = torch.rand(2, 3, *hw, requires_grad=True)
    if BACKBONES.params(name).get("residual_init") == "zero":  # starts as the identity: its output layer is zero,
        assert torch.equal(m.restore(x, torch.tensor([0.1, 0.2])), x)  # so perturb it for gradients everywhere
        torch.nn.init.normal_(m.out.weight, std=0.01)
    for mod in m.modules():  # offsets start at zero; perturb them so every offset weight gets a gradient
        if isinstance(mod, ModulatedDeformConv):
            torch.nn.init.normal_(mod.offset_mask.weight, std=0.01)
    y = m.restore(x, torch.tensor([0.1, 0.2]))
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    y.square().mean().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_cbdnet_exposes_its_noise_estimate():
    m = build_backbone("cbdnet_small")
    assert m.extras() == {}
    m.restore(torch.rand(1, 3, 18, 22), torch.tensor([0.1]))
    assert m.extras()["noise_map"].shape == (1, 3, 18, 22)


def test_zero_offsets_and_unit_masks_reproduce_a_plain_convolution():
    from models.sadnet import ModulatedDeformConv

    torch.manual_seed(0)
    dcn = ModulatedDeformConv(16, 8)
    n = dcn.groups * 9
    with torch.no_grad():
        dcn.offset_mask.bias[2 * n:] = 100.0  # sigmoid -> 1; offsets stay exactly 0
    x, feat = torch.rand(2, 16, 11, 13), torch.rand(2, 8, 11, 13)
    assert torch.allclose(dcn(x, feat), torch.nn.functional.conv2d(x, dcn.weight, dcn.bias, padding=1), atol=1e-5)
    with torch.no_grad():
        dcn.offset_mask.bias[:2 * n] = 0.5  # half-pixel shifts: no longer the plain convolution
    assert not torch.allclose(dcn(x, feat), torch.nn.functional.conv2d(x, dcn.weight, dcn.bias, padding=1), atol=1e-3)


@pytest.mark.parametrize(("c", "hw", "groups"), [(16, (9, 12), 8), (4, (5, 6), 1)])
def test_cpu_deformable_convolution_equals_torchvision(c, hw, groups):
    """Values and gradients, with offsets large enough to leave the image."""
    from torchvision.ops import deform_conv2d

    from models.sadnet import deform_conv2d_sampled

    g = torch.Generator().manual_seed(0)
    args = [torch.rand(2, c, *hw, generator=g, dtype=torch.float64),
            2 * torch.randn(2, 2 * groups * 9, *hw, generator=g, dtype=torch.float64),
            torch.rand(c, c, 3, 3, generator=g, dtype=torch.float64), torch.rand(c, generator=g, dtype=torch.float64),
            torch.rand(2, groups * 9, *hw, generator=g, dtype=torch.float64)]
    ours = [a.clone().requires_grad_() for a in args]
    ref = [a.clone().requires_grad_() for a in args]
    y_ours = deform_conv2d_sampled(*ours, padding=1)
    y_ref = deform_conv2d(ref[0], ref[1], ref[2], ref[3], padding=1, mask=ref[4])
    assert torch.allclose(y_ours, y_ref, atol=1e-12)
    (y_ours * y_ref.detach()).sum().backward()
    (y_ref * y_ref.detach()).sum().backward()
    for a, b in zip(ours, ref, strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_untrained_restoration_is_finite_at_full_size(name):
    torch.manual_seed(0)
    with torch.no_grad():
        y = build_backbone(name).eval().restore(torch.rand(1, 3, 64, 128), torch.tensor([0.2]))
    assert torch.isfinite(y).all()


def test_noise_level_changes_the_output():
    torch.manual_seed(0)
    m = build_backbone("ffdnet_small")
    x = torch.rand(1, 3, 16, 16)
    assert not torch.allclose(m.restore(x, torch.tensor([0.0])), m.restore(x, torch.tensor([0.2])))


def test_unknown_backbone_suggests_close_name():
    with pytest.raises(UnknownNameError, match="did you mean 'ffdnet'"):
        build_backbone("ffdnte")
