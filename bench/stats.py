"""Which differences of a table are real: a paired bootstrap over val images, stratified over seeds.

Within a backbone group every row is resampled with the *same* image indices (paired, as lm-evaluation-harness
resamples the same documents for two models); with several seeds, seeds are resampled within each row
(stratified, as rliable does over runs). PSNR and SSIM are means over images; mIoU is recomputed from the
resampled per-image intersect and union pixel counts (summed, then divided), never averaged per image. A
resample is a vector of multinomial counts over the images, so every statistic of every resample is one
matrix product: all resamples at once.

Ranks: the difference of every pair of rows gets a two-sided p-value (the observed difference over its bootstrap
standard error), Holm-adjusted over the pairs of the group; rows share a letter (compact letter display) unless their difference is significant. P(row > ref)
is rliable's probability of improvement over seeds (the Mann-Whitney U statistic over seed values / n1 n2).
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
        n = (self.values if self.values is not None else self.areas).shape[1]
        return float(self.statistic(np.ones((1, n))).mean())


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
    """Two-sided p-value of "no difference": the observed difference over its bootstrap standard error, normal.

    (A p-value counted from the resamples cannot go below 1/(B+1): with 11 rows, 55 pairs and Holm, no pair could
    ever be significant at 2,000 resamples. The normal approximation resolves small p-values.)"""
    se = float(np.nanstd(diff, ddof=1))
    if se == 0.0:
        return 1.0 if observed == 0 else 0.0
    return float(2 * sps.norm.sf(abs(observed) / se))


def letter_display(order: list[str], different: set[frozenset]) -> dict[str, str]:
    """Compact letter display (insert-and-absorb): ``order`` best first; rows share a letter unless their pair is in
    ``different``. Letters go to groups in the order of their best row ("a" holds the best)."""
    groups = [set(order)]
    for pair in different:
        i, j = tuple(pair)
        split = []
        for g in groups:
            split += [g - {i}, g - {j}] if i in g and j in g else [g]
        groups = [g for g in split if g and not any(g < h for h in split)]
        groups = [set(g) for g in {frozenset(g) for g in groups}]
    groups.sort(key=lambda g: min(order.index(x) for x in g))
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
                  n_boot: int = N_BOOT, seed: int = 0, alpha: float = ALPHA) -> dict[str, dict]:
    """Per row: value, 95 % CI, difference to ``reference`` with its CI, letters, top group, P(row > reference).

    ``rows`` are the rows of one backbone group at one (sigma, metric), each over the same val images in the same
    order. Seeded: the same input gives the same output."""
    rng = np.random.default_rng(seed)
    labels = list(rows)
    n = {(r.values if r.values is not None else r.areas).shape[1] for r in rows.values()}
    if len(n) != 1:
        raise ValueError(f"rows of one group have different image counts: {sorted(n)}")
    weights = image_weights(n.pop(), n_boot, rng)  # shared: the pairing
    boot = {k: resample_row(r, weights, rng) for k, r in rows.items()}
    point = {k: r.point() for k, r in rows.items()}
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    out = {k: {"value": point[k], "ci_low": float(np.nanpercentile(boot[k], lo)),
               "ci_high": float(np.nanpercentile(boot[k], hi))} for k in labels}
    pairs = list(itertools.combinations(labels, 2))
    p = np.array([bootstrap_p(point[a] - point[b], boot[a] - boot[b]) for a, b in pairs])
    adjusted = holm(p) if len(p) else p
    different = {frozenset(pair) for pair, q in zip(pairs, adjusted, strict=True) if q < alpha}
    sign = 1 if higher_is_better else -1
    order = sorted(labels, key=lambda k: -sign * point[k])
    letters = letter_display(order, different)
    for k in labels:
        out[k]["letters"] = letters[k]
        out[k]["top"] = bool(set(letters[k]) & set(letters[order[0]]))
    if reference in rows:
        for k in labels:
            d = boot[k] - boot[reference]
            out[k].update(diff=point[k] - point[reference], diff_low=float(np.nanpercentile(d, lo)),
                          diff_high=float(np.nanpercentile(d, hi)))
            if rows[k].seeds >= 2 and rows[reference].seeds >= 2:
                sk = rows[k].statistic(np.ones((1, weights.shape[1])))[:, 0]
                sr = rows[reference].statistic(np.ones((1, weights.shape[1])))[:, 0]
                out[k]["p_improve"] = probability_of_improvement(sk, sr, higher_is_better)
    return out
