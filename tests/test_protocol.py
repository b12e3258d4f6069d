"""--protocol authors: the border shave, the noise seeding and the contextual centring of the authors' code."""
import numpy as np
import pytest
import torch

from bench.protocol import AUTHORS_SHAVE, authors_noise, shave


def test_shaved_psnr_equals_a_hand_computed_one():
    from bench.metrics import psnr

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 200, 240, generator=g)
    out = clean.clone()
    out[..., :AUTHORS_SHAVE, :] = 0.0  # damage only inside the shaved border ...
    out[..., 100, 100] += 0.1  # ... and one pixel inside
    inner = (slice(AUTHORS_SHAVE, 200 - AUTHORS_SHAVE), slice(AUTHORS_SHAVE, 240 - AUTHORS_SHAVE))
    mse = ((out[0][:, inner[0], inner[1]] - clean[0][:, inner[0], inner[1]]) ** 2).double().mean()
    expected = 10 * np.log10(1.0 / float(mse))
    assert float(psnr(shave(out, "authors"), shave(clean, "authors"))[0]) == pytest.approx(expected, abs=1e-4)
    assert shave(out, "ours") is out


def test_the_authors_noise_is_one_field_per_image_size_seeded_by_zero():
    a, b = authors_noise(25.0, (3, 16, 20)), authors_noise(25.0, (3, 16, 20))
    np.random.seed(0)
    reference = np.random.normal(0.0, 25.0 / 255.0, (16, 20, 3)).astype(np.float32).transpose(2, 0, 1)
    assert torch.equal(a, b) and np.array_equal(a.numpy(), reference)


def test_the_protocol_reaches_the_noise_the_cells_and_the_contextual_objective():
    from bench.config import cell_from_dict
    from bench.grids import get_grid

    ours = get_grid("objectives").cells("synthcity")
    authors = get_grid("objectives").with_protocol("authors").cells("synthcity")
    assert all("protocol" not in c.to_dict() for c in ours)  # ours keeps the hashes of cells measured before
    assert all(c.protocol == "authors" and cell_from_dict(c.to_dict()) == c for c in authors)
    assert not {c.cell_hash() for c in ours} & {c.cell_hash() for c in authors}
    ctx = {c.objective: dict(c.objective_kwargs) for c in authors}
    assert ctx["contextual"]["center"] == "target_batch" and "center" not in ctx["l1"]
    assert dict(next(c for c in ours if c.objective == "contextual").objective_kwargs)["center"] == "image"


def test_contextual_centring_by_the_target_batch():
    from losses.perceptual import contextual_similarity

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 8, 5, 5, generator=g), torch.rand(3, 8, 5, 5, generator=g)
    per_image = contextual_similarity(x, y)
    by_batch = contextual_similarity(x, y, center="target_batch")
    assert not torch.allclose(per_image, by_batch)
    # the same as centring both by hand with the batch mean and then skipping any further centring
    mu = y.mean((0, 2, 3), keepdim=True)
    manual = contextual_similarity(x - mu, y - mu, center="target_batch")  # mean of y - mu over the batch is 0
    assert torch.allclose(by_batch, manual, atol=1e-6)
    assert torch.allclose(contextual_similarity(x[:1], y[:1]), contextual_similarity(x[:1], y[:1], center="target_batch"))


def test_a_small_image_cannot_be_shaved():
    from bench.base.errors import BenchError

    with pytest.raises(BenchError, match="shaves 64 px"):
        shave(torch.zeros(1, 3, 128, 256), "authors")
