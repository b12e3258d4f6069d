import pytest
import torch

from bench.registry import UnknownNameError
from models import build_backbone


def test_ffdnet_has_the_authors_parameter_count():
    assert sum(p.numel() for p in build_backbone("ffdnet").parameters()) == 852_108


@pytest.mark.parametrize("name", ["ffdnet", "ffdnet_small"])
@pytest.mark.parametrize("hw", [(32, 32), (33, 47), (17, 20)])
def test_shapes_and_gradients(name, hw):
    torch.manual_seed(0)
    m = build_backbone(name)
    x = torch.rand(2, 3, *hw, requires_grad=True)
    y = m.restore(x, torch.tensor([0.1, 0.2]))
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    y.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_noise_level_changes_the_output():
    torch.manual_seed(0)
    m = build_backbone("ffdnet_small")
    x = torch.rand(1, 3, 16, 16)
    assert not torch.allclose(m.restore(x, torch.tensor([0.0])), m.restore(x, torch.tensor([0.2])))


def test_unknown_backbone_suggests_close_name():
    with pytest.raises(UnknownNameError, match="did you mean 'ffdnet'"):
        build_backbone("ffdnte")
