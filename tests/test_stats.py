"""The paired bootstrap is calibrated: null rate, power, coverage on synthetic per-image values with a known truth;
mIoU from per-image areas equals mmseg's; letters, Holm and P(improvement) against closed forms."""
import numpy as np
import pytest
import torch

from bench.stats import (
    RowSample,
    SeedSpread,
    analyse_group,
    bootstrap_p,
    holm,
    image_weights,
    letter_display,
    probability_of_improvement,
    probability_of_improvement_ci,
    resample_row,
    welch,
)

N = 96


def _pair(rng, shift=0.0, seeds=3, seed_sd=0.0):
    """Two rows over the same 96 images: a shared per-image level (the image's difficulty) plus each network's own
    noise and a seed effect; the second row shifted by ``shift`` std of the per-image differences."""
    level = rng.normal(25.0, 2.0, N)
    a = level + rng.normal(0.0, 0.5, (seeds, N)) + rng.normal(0, seed_sd, (seeds, 1))
    b = level + rng.normal(0.0, 0.5, (seeds, N)) + rng.normal(0, seed_sd, (seeds, 1))
    sd = 0.5 * np.sqrt(2.0)
    return {"l1": RowSample(values=a), "other": RowSample(values=b + shift * sd)}


def _different(out: dict) -> bool:
    """The two rows were declared different: they share no letter."""
    return not set(out["l1"]["letters"]) & set(out["other"]["letters"])


def _detected(out: dict) -> bool:
    """Declared different in the true direction: "other" alone in the top group."""
    return out["other"]["letters"] == "a" and out["l1"]["letters"] == "b"


def test_single_seed_rows_are_not_ranked_and_make_no_claim():
    """One network per row: its difference from another says nothing about the objective (no seed variance), so no
    letters, no top group, no p-value; the image-only interval of the difference is still given."""
    out = analyse_group(_pair(np.random.default_rng(1), shift=3.0, seeds=1), seed=0)
    for k in out:
        assert out[k]["ranked"] is False and out[k]["letters"] == "" and out[k]["top"] is False
        assert out[k]["ci_basis"] == "images only" and out[k]["seeds"] == 1
    assert "diff_p" not in out["other"] and out["other"]["diff_low"] > 0  # the networks differ; the objectives?


def test_a_supplied_seed_spread_ranks_single_seed_rows_with_its_uncertainty():
    rows = _pair(np.random.default_rng(2), shift=3.0, seeds=1)
    tight = analyse_group(rows, seed=0, spread=SeedSpread(0.01, 5, "measured"))
    wide = analyse_group(rows, seed=0, spread=SeedSpread(5.0, 5, "measured"))
    assert tight["other"]["ranked"] and tight["other"]["ci_basis"] == "supplied spread" and _detected(tight)
    assert wide["other"]["letters"] == wide["l1"]["letters"] == "a"  # a wide seed spread: not a real difference
    assert wide["other"]["diff_df"] == pytest.approx(4.0, rel=0.05)  # one estimate of 5 seeds, not two


def test_the_seed_spread_decides_not_the_images():
    """Three seeds whose values spread by 1 dB: a +0.5 dB difference that the images alone would call certain is
    not significant; with tight seeds it is."""
    rng = np.random.default_rng(3)
    loose = analyse_group(_pair(rng, shift=0.5 / np.sqrt(2) / 0.5, seeds=3, seed_sd=1.0), seed=0)
    tight = analyse_group(_pair(rng, shift=0.5 / np.sqrt(2) / 0.5, seeds=3, seed_sd=0.01), seed=0)
    assert not _different(loose) and _detected(tight)
    assert loose["other"]["diff_high"] - loose["other"]["diff_low"] > 5 * (tight["other"]["diff_high"]
                                                                           - tight["other"]["diff_low"])


def test_welch_satterthwaite_against_scipys_welch_t_test():
    """With no image term, the test is Welch's t-test on the per-seed values (scipy's ttest_ind, equal_var=False)."""
    from scipy import stats

    a, b = np.array([1.0, 1.4, 0.7, 1.1]), np.array([0.2, 0.9, 0.4])
    t, df, _ = welch(a.mean() - b.mean(), 0.0, [(a.var(ddof=1), 3, 4, "a"), (b.var(ddof=1), 2, 3, "b")])
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(ref.statistic) and df == pytest.approx(ref.df)


def test_probability_of_improvement_has_a_stratified_bootstrap_interval():
    rng = np.random.default_rng(4)
    p, lo, hi = probability_of_improvement_ci(np.array([3.0, 2.5, 2.9]), np.array([1.0, 2.0, 1.5]), True, rng)
    assert p == 1.0 and hi == 1.0 and lo <= 1.0
    p, lo, hi = probability_of_improvement_ci(np.array([1.0, 3.0, 2.0]), np.array([2.0, 1.5, 2.5]), True, rng)
    assert lo < p < hi and 0 <= lo and hi <= 1  # 3 vs 3 seeds: P alone says little
    assert p == pytest.approx(probability_of_improvement(np.array([1.0, 3.0, 2.0]), np.array([2.0, 1.5, 2.5])))


def test_confidence_interval_of_a_row_covers_the_objectives_mean():
    """Seeds and images both vary: the t interval over 3 seeds covers the objective's true mean ~95 % of the time."""
    rng = np.random.default_rng(5)
    hits, trials = 0, 400
    for t in range(trials):
        values = 0.7 + rng.normal(0, 0.05, (3, 1)) + rng.normal(0, 0.1, (3, N))  # true mean 0.7
        out = analyse_group({"x": RowSample(values=values)}, reference=None, n_boot=300, seed=t)["x"]
        hits += out["ci_low"] <= 0.7 <= out["ci_high"]
    assert 0.92 <= hits / trials <= 0.98, hits / trials


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
    rows = _pair(rng, shift=0.2, seeds=1)
    assert analyse_group(rows, seed=7) == analyse_group(rows, seed=7)
    paired = analyse_group(rows, seed=7)["other"]
    w_a, w_b = image_weights(N, 2000, np.random.default_rng(8)), image_weights(N, 2000, np.random.default_rng(9))
    unpaired = resample_row(rows["other"], w_a, rng) - resample_row(rows["l1"], w_b, rng)
    width_unpaired = np.percentile(unpaired, 97.5) - np.percentile(unpaired, 2.5)
    assert paired["diff_high"] - paired["diff_low"] < 0.5 * width_unpaired  # the shared image level cancels


def test_the_seed_spread_widens_a_rows_interval():
    rng = np.random.default_rng(5)
    values = rng.normal(25, 1, (3, N)) + np.array([[0.0], [0.5], [1.0]])  # three seeds of different level
    out = analyse_group({"x": RowSample(values=values)}, reference=None, seed=0)["x"]
    single = analyse_group({"x": RowSample(values=values[:1])}, reference=None, seed=0)["x"]
    assert out["ci_high"] - out["ci_low"] > single["ci_high"] - single["ci_low"]  # seed spread widens the CI
    assert out["ci_basis"] == "seeds" and single["ci_basis"] == "images only"


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
    rows = _pair(rng, shift=-2.0, seeds=3, seed_sd=0.01)  # "other" lower
    out = analyse_group(rows, higher_is_better=False, seed=0)
    assert out["other"]["letters"] == "a" and out["other"]["top"] and not out["l1"]["top"]


def test_letters_do_not_depend_on_the_order_of_the_pairs():
    """Insert-and-absorb depends on the order in which differences are inserted: it is fixed (by the rows' order),
    so the same pairs in any set order give the same letters."""
    import random

    order = [f"r{i}" for i in range(7)]
    pairs = [frozenset(p) for p in [("r0", "r3"), ("r1", "r4"), ("r0", "r5"), ("r2", "r6"), ("r1", "r6"),
                                    ("r3", "r6"), ("r0", "r6")]]
    first = letter_display(order, set(pairs))
    for k in range(20):
        shuffled = pairs[:]
        random.Random(k).shuffle(shuffled)
        assert letter_display(order, dict.fromkeys(shuffled).keys() | set()) == first
    assert first["r0"].startswith("a")
