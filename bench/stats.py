"""Which differences of a table are real, with the training seed as the unit of every claim about an objective.

A row's value is its mean over seeds of the statistic on all val images. The difference D of two rows of a backbone
group has variance

    V = V_images + s_a^2 / n_a + s_b^2 / n_b

where V_images is the paired bootstrap variance over val images of the seed-averaged difference (every row resampled
with the *same* image indices, as lm-evaluation-harness resamples the same documents for two models; mIoU recomputed
from the resampled per-image intersect and union pixel counts, summed then divided, never averaged per image) and
s^2 / n each row's unbiased variance over its n seeds divided by n. D / sqrt(V) is read against a t distribution with
Welch-Satterthwaite degrees of freedom of the seed terms (the image term widens the interval, adds no
degrees of freedom). Seeds are not paired across rows. The same seed gives two objectives the same initial weights and batches, and
on the one pair measured (smoke grid, ``ffdnet_tiny`` l1 vs ssim, seeds 0-2) their per-seed values correlate
positively (+0.07 to +0.69 over sigmas and metrics; paired variance 0.31-0.95 of the unpaired), so the unpaired test
is conservative there; three seeds of one pair are too few to adopt pairing for every backbone, and choosing it per
pair would bias the test.

Rows with one seed have no seed variance: they are compared by no letter and no P, and their pairs are not in the
Holm family, unless a measured seed spread is supplied (``SeedSpread``: the std of a metric over seeds of one
backbone, and how many seeds measured it), which then stands for s with its own degrees of freedom. Letters (compact
letter display) come from the Holm-adjusted pairs that the test can compare, named in a fixed order (the best row
first, then table order), so the same results give the same letters. P(row > reference) is rliable's probability of
improvement over seeds (the Mann-Whitney U statistic / n_a n_b) with a 95 % stratified-bootstrap interval (seeds
resampled within each row).
"""
from __future__ import annotations

import itertools
import string
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

N_BOOT, ALPHA = 2000, 0.05


@dataclass(frozen=True)
class RowSample:
    """One table row's per-seed, per-image data for one (sigma, metric): ``values`` (S, N) for a mean over images,
    or ``areas`` (S, N, 2, C): intersect and union pixel counts per image and class (mIoU)."""

    values: np.ndarray | None = None
    areas: np.ndarray | None = None

    @property
    def seeds(self) -> int:
        return len(self.values if self.values is not None else self.areas)

    @property
    def images(self) -> int:
        return (self.values if self.values is not None else self.areas).shape[1]

    def statistic(self, weights: np.ndarray) -> np.ndarray:
        """(S, B): the statistic of each seed under each resample; ``weights`` (B, N) counts over images."""
        if self.values is not None:
            return self.values @ weights.T / weights.sum(1)
        s, n, _, c = self.areas.shape
        sums = (weights @ self.areas.reshape(s, n, 2 * c)).reshape(s, -1, 2, c)  # (S, B, 2, C): one matmul
        inter, union = sums[..., 0, :], sums[..., 1, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)
        present = union > 0
        return np.where(present.any(-1), np.nansum(np.where(present, iou, 0.0), -1) / np.maximum(present.sum(-1), 1),
                        np.nan)

    def point(self) -> float:
        """The row's value: the statistic on all images, averaged over seeds."""
        return float(self.statistic(np.ones((1, self.images))).mean())


def image_weights(n_images: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(B, N) multinomial counts: B resamples of N images with replacement."""
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=n_boot).astype(np.float64)


def resample_row(row: RowSample, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B,): the row's value under each resample (images by ``weights``, seeds resampled within the row)."""
    per_seed = row.statistic(weights)  # (S, B)
    s, b = per_seed.shape
    if s == 1:
        return per_seed[0]
    pick = rng.integers(0, s, size=(b, s))  # stratified: this row's seeds only
    return per_seed[pick, np.arange(b)[:, None]].mean(1)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as ``p``)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def bootstrap_p(observed: float, diff: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from image resamples alone: the observed difference over its bootstrap
    standard error, normal (for a fixed network: no seed term)."""
    se = float(np.nanstd(diff, ddof=1))
    if se == 0.0:
        return 1.0 if observed == 0 else 0.0
    return float(2 * sps.norm.sf(abs(observed) / se))


@dataclass(frozen=True)
class SeedSpread:
    """A measured standard deviation of a metric over training seeds, standing in for the seed variance of rows with
    fewer than 2 seeds: ``std`` over ``seeds`` seeds (its degrees of freedom: seeds - 1), measured by ``source``."""

    std: float
    seeds: int
    source: str = ""


@dataclass(frozen=True)
class _Row:
    point: float  # mean over seeds of the all-image statistic
    per_seed: np.ndarray  # (S,) the all-image statistic of each seed
    var: float | None  # variance of one seed's value around the objective's mean (None: unknown)
    df: float  # its degrees of freedom
    basis: str  # "seeds", "supplied spread" or "images only"


def _row(sample: RowSample, n_images: int, spread: SeedSpread | None) -> _Row:
    per_seed = sample.statistic(np.ones((1, n_images)))[:, 0]
    if len(per_seed) >= 2:
        return _Row(float(per_seed.mean()), per_seed, float(np.var(per_seed, ddof=1)), len(per_seed) - 1.0, "seeds")
    if spread is not None and spread.seeds >= 2:
        return _Row(float(per_seed.mean()), per_seed, spread.std ** 2, spread.seeds - 1.0, "supplied spread")
    return _Row(float(per_seed.mean()), per_seed, None, np.inf, "images only")


def _source(row: _Row, label: str) -> str:
    """What a row's seed variance was estimated from: its own seeds, or the one supplied spread."""
    return "spread" if row.basis == "supplied spread" else f"seeds of {label}"


def welch(diff: float, var_images: float, rows: list[tuple[float, float, int, str]]) -> tuple[float, float, float]:
    """(t, degrees of freedom, standard error) of ``diff`` whose variance is ``var_images`` (known) plus, per row,
    var / n with ``df`` degrees of freedom (``rows``: (var, df, n, source)); Welch-Satterthwaite over the seed terms.
    Rows whose variance
    is one estimate (the same ``source``: a supplied spread) count as one term, not as independent ones."""
    terms: dict[str, list[float]] = {}
    for v, df, n, source in rows:
        terms.setdefault(source, [0.0, df])[0] += v / n
    seeds = sum(t[0] for t in terms.values())
    se = float(np.sqrt(var_images + seeds))
    # degrees of freedom of the seed terms alone: the image term widens the interval but adds no degrees of freedom
    # (the per-seed values already carry each network's image noise; counting it as known made intervals too short)
    denom = sum(p * p / df for p, df in terms.values() if np.isfinite(df) and df > 0)
    dof = seeds * seeds / denom if denom > 0 else np.inf
    t = diff / se if se > 0 else (0.0 if diff == 0 else np.inf * np.sign(diff))
    return float(t), float(dof), se


def _p_two_sided(t: float, dof: float) -> float:
    return float(2 * (sps.norm.sf(abs(t)) if not np.isfinite(dof) else sps.t.sf(abs(t), dof)))


def _quantile(dof: float, level: float) -> float:
    return float(sps.norm.ppf(level) if not np.isfinite(dof) else sps.t.ppf(level, dof))


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, higher_is_better: bool, rng: np.random.Generator,
                                  n_boot: int = N_BOOT, alpha: float = ALPHA) -> tuple[float, float, float]:
    """P(X > Y) over seed values and its (1 - alpha) stratified-bootstrap interval: seeds resampled within each row
    (rliable's ``probability_of_improvement`` with its stratified bootstrap)."""
    x, y = (np.asarray(x, float), np.asarray(y, float)) if higher_is_better else (-np.asarray(x, float),
                                                                                  -np.asarray(y, float))
    xs = x[rng.integers(0, len(x), (n_boot, len(x)))]
    ys = y[rng.integers(0, len(y), (n_boot, len(y)))]
    wins = (xs[:, :, None] > ys[:, None, :]).mean((1, 2)) + 0.5 * (xs[:, :, None] == ys[:, None, :]).mean((1, 2))
    point = float((x[:, None] > y[None, :]).mean() + 0.5 * (x[:, None] == y[None, :]).mean())
    return point, float(np.percentile(wins, 100 * alpha / 2)), float(np.percentile(wins, 100 * (1 - alpha / 2)))


def letter_display(order: list[str], different: set[frozenset]) -> dict[str, str]:
    """Compact letter display (insert-and-absorb): ``order`` best first; rows share a letter unless their pair is in
    ``different``. Pairs are inserted in ``order``'s order and letters go to groups in the order of their rows in
    ``order`` ("a" holds the best), so the result depends on nothing but the inputs."""
    rank = {x: i for i, x in enumerate(order)}
    groups = [frozenset(order)]
    for i, j in sorted((tuple(sorted(p, key=rank.__getitem__)) for p in different), key=lambda p: (rank[p[0]],
                                                                                                      rank[p[1]])):
        split = []
        for g in groups:
            split += [g - {i}, g - {j}] if i in g and j in g else [g]
        kept = []
        for g in split:  # drop empties, duplicates and groups inside another: the maximal ones, in a fixed order
            if g and g not in kept and not any(g < h for h in split):
                kept.append(g)
        groups = kept
    groups.sort(key=lambda g: sorted(rank[x] for x in g))
    names = iter(string.ascii_lowercase + string.ascii_uppercase)
    letters = {x: "" for x in order}
    for g, name in zip(groups, names, strict=False):  # at most 52 groups
        for x in g:
            letters[x] += name
    return {x: "".join(sorted(v)) for x, v in letters.items()}


def probability_of_improvement(x: np.ndarray, y: np.ndarray, higher_is_better: bool = True) -> float:
    """P(X > Y) over seed values (rliable's probability of improvement on one task): U / (n_x n_y)."""
    x, y = (np.asarray(x), np.asarray(y)) if higher_is_better else (-np.asarray(x), -np.asarray(y))
    return float(sps.mannwhitneyu(x, y, alternative="two-sided").statistic / (len(x) * len(y)))


def analyse_group(rows: dict[str, RowSample], higher_is_better: bool = True, reference: str | None = "l1",
                  n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA,
                  spread: SeedSpread | None = None) -> dict[str, dict]:
    """Per row: value, seeds, 95 % interval of the objective's value, its basis, ``ranked`` (whether its letters
    compare it), letters, top group, ``differs`` (the rows it is significantly different from, Holm-adjusted),
    ``best`` (the ranked row of the best value), the difference to ``reference`` with its interval and p-value, and
    P(row > reference) with its interval (rows of at least 2 seeds).

    ``rows`` are the rows of one backbone group at one (sigma, metric), in table order, each over the same val images
    in the same order; ``spread`` the measured seed spread that stands in for single-seed rows. Seeded: the same
    input gives the same output."""
    rng = np.random.default_rng(seed)
    labels = list(rows)
    n = {(r.values if r.values is not None else r.areas).shape[1] for r in rows.values()}
    if len(n) != 1:
        raise ValueError(f"rows of one group have different image counts: {sorted(n)}")
    n_images = n.pop()
    weights = image_weights(n_images, n_boot, rng)  # shared: the pairing over images
    boot = {k: r.statistic(weights).mean(0) for k, r in rows.items()}  # (B,): seed-averaged, images resampled
    info = {k: _row(r, n_images, spread) for k, r in rows.items()}
    lo, hi = alpha / 2, 1 - alpha / 2
    out: dict[str, dict] = {}
    for k in labels:
        r = info[k]
        var_images = float(np.nanvar(boot[k], ddof=1))
        if r.var is None:  # one network: how far other val images would move its value
            low, high = (float(np.nanpercentile(boot[k], 100 * lo)), float(np.nanpercentile(boot[k], 100 * hi)))
        else:
            _, dof, se = welch(0.0, var_images, [(r.var, r.df, len(r.per_seed), r.basis + k)])
            low, high = r.point - _quantile(dof, hi) * se, r.point + _quantile(dof, hi) * se
        out[k] = {"value": r.point, "seeds": len(r.per_seed), "ci_low": low, "ci_high": high, "ci_basis": r.basis,
                  "ranked": r.var is not None}

    def test(a: str, b: str) -> tuple[float, float, float] | None:
        """(p, df, standard error) of a - b, or None when the pair cannot be compared (a row without seed spread)."""
        ra, rb = info[a], info[b]
        if ra.var is None or rb.var is None:
            return None
        t, dof, se = welch(ra.point - rb.point, float(np.nanvar(boot[a] - boot[b], ddof=1)),
                           [(ra.var, ra.df, len(ra.per_seed), _source(ra, a)),
                            (rb.var, rb.df, len(rb.per_seed), _source(rb, b))])
        return _p_two_sided(t, dof), dof, se

    ranked = [k for k in labels if out[k]["ranked"]]
    pairs = list(itertools.combinations(ranked, 2))
    tested = [test(a, b) for a, b in pairs]
    adjusted = holm(np.array([t[0] for t in tested])) if pairs else np.array([])
    different = {frozenset(pair) for pair, q in zip(pairs, adjusted, strict=True) if q < alpha}
    sign = 1 if higher_is_better else -1
    order = sorted(ranked, key=lambda k: (-sign * info[k].point, labels.index(k)))
    letters = letter_display(order, different) if len(order) >= 2 else {}
    for k in labels:
        out[k]["letters"] = letters.get(k, "")
        out[k]["top"] = bool(k in letters and set(letters[k]) & set(letters[order[0]]))
        out[k]["differs"] = sorted((set(p) - {k}).pop() for p in different if k in p)  # Holm-adjusted < alpha
        out[k]["best"] = bool(order) and k == order[0]
    if reference in rows:
        for k in labels:
            diff = info[k].point - info[reference].point
            out[k]["diff"] = diff
            result = test(k, reference) if k != reference else None
            if result is not None:
                p, dof, se = result
                half = _quantile(dof, hi) * se
                out[k].update(diff_low=diff - half, diff_high=diff + half, diff_p=p, diff_df=dof)
            elif k != reference:  # no seed term: the interval is the image sample's alone
                d = boot[k] - boot[reference]
                out[k].update(diff_low=float(np.nanpercentile(d, 100 * lo)),
                              diff_high=float(np.nanpercentile(d, 100 * hi)))
            if len(info[k].per_seed) >= 2 and len(info[reference].per_seed) >= 2 and k != reference:
                p_imp, p_low, p_high = probability_of_improvement_ci(info[k].per_seed, info[reference].per_seed,
                                                                     higher_is_better, rng, n_boot, alpha)
                out[k].update(p_improve=p_imp, p_improve_low=p_low, p_improve_high=p_high)
    return out
