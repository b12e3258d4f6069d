"""The paired bootstrap is calibrated: null rate, power, coverage on synthetic per-image values with a known truth;
mIoU from per-image areas equals mmseg's; letters, Holm and P(improvement) against closed forms."""
import numpy as np
import pytest
import torch

from bench.stats import (
    RowSample,
    analyse_group,
    bootstrap_p,
    holm,
    image_weights,
    letter_display,
    probability_of_improvement,
    resample_row,
)

N = 96


def _pair(rng, shift=0.0):
    """Two rows over the same 96 images: a shared per-image level (the image's difficulty) plus each row's own
    noise; the second row shifted by ``shift`` std of the per-image differences."""
    level = rng.normal(25.0, 2.0, N)
    a = level + rng.normal(0.0, 0.5, N)
    b = level + rng.normal(0.0, 0.5, N)
    sd = 0.5 * np.sqrt(2.0)
    return {"l1": RowSample(values=a[None]), "other": RowSample(values=(b + shift * sd)[None])}


def _different(out: dict) -> bool:
    """The two rows were declared different: they share no letter."""
    return not set(out["l1"]["letters"]) & set(out["other"]["letters"])


def _detected(out: dict) -> bool:
    """Declared different in the true direction: "other" alone in the top group."""
    return out["other"]["letters"] == "a" and out["l1"]["letters"] == "b"


def test_null_two_rows_from_one_distribution_are_rarely_called_different():
    rng = np.random.default_rng(1)
    called = [_different(analyse_group(_pair(rng), n_boot=1000, seed=t)) for t in range(200)]
    assert np.mean(called) <= 0.07, np.mean(called)


def test_power_a_shift_of_one_std_of_the_differences_is_detected():
    rng = np.random.default_rng(2)
    found = [_detected(analyse_group(_pair(rng, shift=1.0), n_boot=1000, seed=t)) for t in range(100)]
    assert np.mean(found) >= 0.90
    # a shift of 3 standard errors of the mean difference: about 85 % power for a two-sided 5 % test
    small = [_detected(analyse_group(_pair(rng, shift=3 / np.sqrt(N)), n_boot=1000, seed=t)) for t in range(200)]
    assert 0.70 <= np.mean(small) <= 0.97, np.mean(small)


def test_confidence_interval_of_a_mean_covers_the_truth():
    rng = np.random.default_rng(3)
    hits = 0
    trials = 1000
    for t in range(trials):
        values = rng.normal(0.7, 0.1, N)  # true mean 0.7
        out = analyse_group({"x": RowSample(values=values[None])}, reference=None, n_boot=1000, seed=t)["x"]
        hits += out["ci_low"] <= 0.7 <= out["ci_high"]
    assert 0.93 <= hits / trials <= 0.97, hits / trials


def test_miou_from_per_image_areas_equals_mmseg_on_all_images():
    from seg_eval.miou import IoUAccumulator

    g = torch.Generator().manual_seed(0)
    acc = IoUAccumulator(19)
    for _ in range(12):
        label = torch.randint(0, 19, (32, 48), generator=g)
        label[:3] = 255  # ignored pixels
        pred = torch.where(torch.rand(32, 48, generator=g) < 0.6, label.clamp(max=18), torch.randint(0, 19, (32, 48), generator=g))
        acc.update(pred, label)
    per = acc.per_image_dict()
    areas = np.stack([np.asarray(per["intersect"]), np.asarray(per["union"])], axis=1)[None]  # (1, N, 2, C)
    assert RowSample(areas=areas).point() == pytest.approx(acc.miou(), abs=1e-12)
    # one resample with every weight 1 is the same number; a resample is a sum of areas, not a mean of IoUs
    ones = np.ones((1, areas.shape[1]))
    assert resample_row(RowSample(areas=areas), ones, np.random.default_rng(0))[0] == pytest.approx(acc.miou(), abs=1e-12)


def test_same_inputs_same_output_and_pairing_shrinks_the_difference_interval():
    rng = np.random.default_rng(4)
    rows = _pair(rng, shift=0.2)
    assert analyse_group(rows, seed=7) == analyse_group(rows, seed=7)
    paired = analyse_group(rows, seed=7)["other"]
    w_a, w_b = image_weights(N, 2000, np.random.default_rng(8)), image_weights(N, 2000, np.random.default_rng(9))
    unpaired = resample_row(rows["other"], w_a, rng) - resample_row(rows["l1"], w_b, rng)
    width_unpaired = np.percentile(unpaired, 97.5) - np.percentile(unpaired, 2.5)
    assert paired["diff_high"] - paired["diff_low"] < 0.5 * width_unpaired  # the shared image level cancels


def test_seeds_are_resampled_within_rows():
    rng = np.random.default_rng(5)
    values = rng.normal(25, 1, (3, N)) + np.array([[0.0], [0.5], [1.0]])  # three seeds of different level
    out = analyse_group({"x": RowSample(values=values)}, reference=None, seed=0)["x"]
    single = analyse_group({"x": RowSample(values=values[:1])}, reference=None, seed=0)["x"]
    assert out["ci_high"] - out["ci_low"] > single["ci_high"] - single["ci_low"]  # seed spread widens the CI


def test_holm_letters_and_probability_of_improvement_against_closed_forms():
    assert holm(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    assert letter_display(["a1", "a2", "a3"], set()) == {"a1": "a", "a2": "a", "a3": "a"}
    assert letter_display(["a1", "a2", "a3"], {frozenset({"a1", "a3"})}) == {"a1": "a", "a2": "ab", "a3": "b"}
    assert letter_display(["a1", "a2", "a3"], {frozenset({"a1", "a2"}), frozenset({"a1", "a3"}),
                                               frozenset({"a2", "a3"})}) == {"a1": "a", "a2": "b", "a3": "c"}
    x, y = np.array([3.0, 1.0, 2.0]), np.array([2.0, 0.0])
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in x for b in y])
    assert probability_of_improvement(x, y) == pytest.approx(brute)
    assert probability_of_improvement(x, y, higher_is_better=False) == pytest.approx(1 - brute)
    spread = np.random.default_rng(0).normal(0.0, 1.0, 4000)
    assert bootstrap_p(1.96, spread) == pytest.approx(0.05, abs=0.003)  # z = 1.96 over a unit standard error
    assert bootstrap_p(8.0, spread) < 1e-10 and bootstrap_p(0.0, np.zeros(10)) == 1.0


def test_lower_is_better_orders_letters_the_other_way():
    rng = np.random.default_rng(6)
    rows = _pair(rng, shift=-2.0)  # "other" lower
    out = analyse_group(rows, higher_is_better=False, seed=0)
    assert out["other"]["letters"] == "a" and out["other"]["top"] and not out["l1"]["top"]
