"""D2SM against a brute-force Eq. (1), its queue (FIFO, gradient through the current batch only), and
the divergence variants."""
import math

import pytest
import torch
import torch.nn.functional as F

from losses.d2sm import (
    FeatureQueue,
    conditional_probabilities,
    image_patches,
    row_divergence,
    statistics_divergence,
)


def _features(n=5, d=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)


def _brute_force(fr, fc, kind="kl"):
    """Eq. (1) with explicit loops: K = (cos + 1) / 2, g_{j|i} over k != i, summed over i and j != i."""
    n = fr.shape[0]

    def probs(f):
        k = [[(F.cosine_similarity(f[i], f[j], dim=0).item() + 1) / 2 for j in range(n)] for i in range(n)]
        return [[k[i][j] / sum(k[i][m] for m in range(n) if m != i) if j != i else 0.0 for j in range(n)]
                for i in range(n)]

    gr, gc = probs(fr), probs(fc)

    def kl(p, q):
        return sum(p[i][j] * math.log(p[i][j] / q[i][j]) for i in range(n) for j in range(n) if j != i)

    if kind == "kl":
        return kl(gr, gc)
    if kind == "ikl":
        return kl(gc, gr)
    m = [[(gr[i][j] + gc[i][j]) / 2 for j in range(n)] for i in range(n)]
    return 0.5 * kl(gr, m) + 0.5 * kl(gc, m)


@pytest.mark.parametrize("kind", ["kl", "ikl", "jsd"])
def test_equals_a_brute_force_double_loop(kind):
    fr, fc = _features()
    assert statistics_divergence(fr, fc, kind).item() == pytest.approx(_brute_force(fr, fc, kind), rel=1e-9)


def test_zero_for_identical_features_positive_otherwise():
    fr, fc = _features()
    assert statistics_divergence(fc, fc).item() == 0.0
    assert statistics_divergence(fr, fc).item() > 0
    # invariant to the features' scale (they are L2-normalised), not to their direction
    assert statistics_divergence(3 * fc, fc).item() == pytest.approx(0.0, abs=1e-12)


def test_conditional_probabilities_exclude_the_diagonal():
    p = conditional_probabilities(F.normalize(_features()[0], dim=1))
    assert torch.all(p.diagonal() == 0) and torch.allclose(p.sum(1), torch.ones(5, dtype=torch.float64))


def test_ikld_is_kl_with_arguments_swapped():
    fr, fc = _features(seed=2)
    assert statistics_divergence(fr, fc, "ikl").item() == pytest.approx(statistics_divergence(fc, fr, "kl").item())
    assert statistics_divergence(fr, fc, "ikl").item() != pytest.approx(statistics_divergence(fr, fc, "kl").item())


def test_jsd_is_symmetric_and_at_most_log2_per_row():
    fr, fc = _features(seed=3)
    pr, pc = conditional_probabilities(F.normalize(fr, dim=1)), conditional_probabilities(F.normalize(fc, dim=1))
    a, b = row_divergence(pr, pc, "jsd"), row_divergence(pc, pr, "jsd")
    assert torch.allclose(a, b) and torch.all(a >= 0) and torch.all(a <= math.log(2))
    # disjoint supports reach the bound
    p = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    q = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(row_divergence(p, q, "jsd"), torch.full((3,), math.log(2), dtype=torch.float64))


def test_queue_is_fifo_newest_first_and_bounded():
    q = FeatureQueue(size=4)
    batches = [torch.full((2, 3), float(i)) for i in range(4)]
    for b in batches:
        q.push(b)
    assert q.rows[:, 0].tolist() == [3.0, 3.0, 2.0, 2.0]  # batches 0 and 1 fell out
    current = torch.full((2, 3), 9.0)
    assert q.samples(current)[:, 0].tolist() == [9.0, 9.0, 3.0, 3.0]  # current + the newest q - N


def _d2sm(loss_resources, **kw):
    from losses import build_objective

    return build_objective("d2sm", loss_resources, l1_weight=0.0, **kw).train()


def _smooth(seed, b=1):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(b, 3, 4, 4, generator=g), size=(32, 32), mode="bicubic").clamp(0, 1)


def test_gradient_reaches_the_restored_image_through_the_queue(loss_resources):
    """Batch size 1, as in the authors' README: only the queue makes statistics possible. Their release pushes
    the batch under no_grad and gives exactly zero gradient; ours must not."""
    obj = _d2sm(loss_resources, queue_size=8)
    restored_seen = []
    for step in range(4):
        clean = _smooth(step)
        restored = (clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(99 + step))
                    ).requires_grad_()
        loss, _ = obj(restored, clean)
        restored_seen.append(restored)
    loss.backward()
    assert float(loss.detach()) > 0
    grad = restored_seen[-1].grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # older entries are constants: the gradient reaches only the current batch
    assert all(r.grad is None for r in restored_seen[:-1])
    assert not obj.queues[0].rows.requires_grad


def test_queue_is_not_updated_in_eval_mode(loss_resources):
    obj = _d2sm(loss_resources).eval()
    obj(_smooth(0, b=3), _smooth(1, b=3))
    assert obj.queues[0].rows is None


def test_queue_state_round_trips_for_resume(loss_resources):
    a, b = _d2sm(loss_resources), _d2sm(loss_resources)
    for s in range(3):
        a(_smooth(s, b=2), _smooth(s + 10, b=2))
    b.load_train_state(a.train_state())
    x, y = _smooth(7, b=2), _smooth(8, b=2)
    assert torch.equal(a(x, y)[0], b(x, y)[0])


def test_internal_uses_the_patches_of_each_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    p = image_patches(x, size=4, stride=2)
    assert p.shape == (2, 9, 3, 4, 4)
    assert torch.equal(p[1, 4], x[1, :, 2:6, 2:6]) and torch.equal(p[0, 8], x[0, :, 4:8, 4:8])


def test_internal_is_zero_for_identical_images_and_has_gradient_at_batch_one(loss_resources):
    from losses import build_objective

    obj = build_objective("d2sm_internal", loss_resources, l1_weight=0.0, patch=16, stride=8).train()
    clean = _smooth(0)
    assert float(obj(clean, clean)[0]) == 0.0
    restored = (clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))).requires_grad_()
    loss, _ = obj(restored, clean)
    loss.backward()
    assert float(loss.detach()) > 0 and restored.grad.abs().sum() > 0
