"""``--seeds auto``: seeds spent where a ranking is still undecided, with an error rate that survives the looks.

Every row of a grid starts with ``START`` (3) seeds. At each look, every backbone group is analysed at each test
sigma for each decision metric (default mIoU) with ``bench.stats.analyse_group`` at the look level
``alpha / looks(K)``, and a pair is *undecided* when the Holm-adjusted test does not call it different. The pairs
that matter are each row against the group's best row and against the reference row (l1); both rows of an
undecided pair get seeds, up to ``START + look`` (so look ``l`` sees at most ``START + l - 1`` seeds and there are
at most ``looks(K) = K - START + 1`` looks), until no pair is undecided or every undecided row has K seeds.

Why the level is divided: a null pair that is tested again after each new seed has several chances to be called
different. With at most L looks, each at alpha / L, the chance of any false call over all looks is at most alpha
(Bonferroni over the looks, the simplest group-sequential bound; the report of an auto run uses the same level,
so its letters are the final look's). ``tests/test_calibration.py`` measures the whole procedure on null groups
with a seed effect (5 and 11 rows): the any-pair false-positive rate stays at or below 5 %.

The plan is a pure function of the finished results: ``bench run``, ``report``, ``status`` and ``check`` replay the
looks from the result files, so an interrupted run resumes with the same seeds and every command agrees on them.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from bench.stats import ALPHA, N_BOOT, RowSample, analyse_group

START, DEFAULT_MAX_SEEDS = 3, 8
DECISION_METRICS = ("miou",)


def looks(max_seeds: int) -> int:
    """The most looks a run with ``max_seeds`` can take: after START, START + 1, ..., max_seeds seeds."""
    return max(1, max_seeds - START + 1)


def look_alpha(max_seeds: int, alpha: float = ALPHA) -> float:
    """The level of each look (and of the final table's letters): alpha split evenly over the looks."""
    return alpha / looks(max_seeds)


@dataclass(frozen=True)
class Family:
    """One comparison family at one look: a backbone group at one (sigma, metric), its rows keyed by row."""

    name: str  # "ffdnet_small σ=25 mIoU"
    rows: dict[str, RowSample]  # label -> its sample, in table order (the report's)
    row_of: dict[str, Hashable]  # label -> the plan's row
    higher_is_better: bool
    reference: str | None  # the reference objective's label (l1)
    seed: int  # the bootstrap's seed (the report's for the same group)


@dataclass
class Look:
    number: int
    seeds: dict[Hashable, int]  # row -> seeds it had at this look
    reasons: dict[Hashable, list[str]] = field(default_factory=dict)  # row -> its undecided comparisons


@dataclass
class Plan:
    """Where a ``--seeds auto`` run stands: ``seeds`` per row (what the run needs now), the looks taken, and
    whether it is ``done`` (no further seed can be asked for) or waiting for cells (``pending``)."""

    seeds: dict[Hashable, int]
    history: list[Look]
    done: bool
    max_seeds: int
    alpha: float
    parts: list[Plan] = field(default_factory=list)  # independent groups (a grid's backbones), when merged

    @property
    def pending(self) -> bool:
        return not self.done

    @property
    def looks_taken(self) -> int:
        return max((p.looks_taken for p in self.parts), default=len(self.history))

    def part(self, row: Hashable) -> Plan:
        """The plan of ``row``'s group (this one unless merged)."""
        return next((p for p in self.parts if row in p.seeds), self)

    def reasons(self, row: Hashable) -> list[str]:
        """Why ``row`` got its last added seeds (the undecided comparisons of the look that added them)."""
        for look in reversed(self.part(row).history):
            if row in look.reasons:
                return look.reasons[row]
        return []

    def decided(self, row: Hashable) -> bool:
        """Whether ``row`` had no undecided comparison at the last look of its group."""
        history = self.part(row).history
        return bool(history) and row not in history[-1].reasons


def merge(parts: list[Plan]) -> Plan:
    """Plans of independent groups (no comparison crosses them) as one: done when every part is."""
    seeds = {row: n for p in parts for row, n in p.seeds.items()}
    return Plan(seeds, [], all(p.done for p in parts), parts[0].max_seeds, parts[0].alpha, list(parts))


@dataclass(frozen=True)
class Comparisons:
    """The comparisons that decide a family: every ranked row against the best row and against the reference."""

    best: str | None
    pairs: frozenset  # of frozenset({a, b})
    open: frozenset  # the pairs the Holm-adjusted test does not call different


def comparisons(family: Family, alpha: float, n_boot: int = N_BOOT) -> Comparisons:
    out = analyse_group(family.rows, family.higher_is_better, family.reference, n_boot, family.seed, alpha)
    ranked = [k for k, v in out.items() if v["ranked"]]
    best = next((k for k in ranked if out[k]["best"]), None)
    pairs = frozenset(frozenset((k, other)) for k in ranked for other in (best, family.reference)
                      if other is not None and other in ranked and other != k)
    still = frozenset(p for p in pairs if not (set(p) & set(out[next(iter(p))]["differs"])))
    return Comparisons(best, pairs, still)


def undecided(family: Family, alpha: float, n_boot: int = N_BOOT) -> dict[str, list[str]]:
    """The family's undecided comparisons, per label: against the best row and against the reference."""
    c = comparisons(family, alpha, n_boot)
    order = list(family.rows)
    reasons: dict[str, list[str]] = {}
    for pair in sorted(c.open, key=lambda p: sorted(order.index(x) for x in p)):
        a, b = sorted(pair, key=order.index)
        for x, y in ((a, b), (b, a)):
            role = "the best row" if y == c.best else "the reference" if y == family.reference else "a row"
            reasons.setdefault(x, []).append(f"{family.name}: not yet different from {y} ({role})")
    return reasons


def plan(rows: list[Hashable], families: Callable[[dict[Hashable, int]], list[Family] | None],
         max_seeds: int = DEFAULT_MAX_SEEDS, alpha: float = ALPHA, n_boot: int = N_BOOT) -> Plan:
    """Replay the looks: ``families(seeds)`` gives the comparison families with each row's first ``seeds[row]``
    seeds, or None while some of those cells are not finished (the plan is then pending at those seeds)."""
    if max_seeds < START:
        raise ValueError(f"max_seeds {max_seeds} < {START}")
    level = look_alpha(max_seeds, alpha)
    seeds = {r: START for r in rows}
    history: list[Look] = []
    for number in range(1, looks(max_seeds) + 1):
        fams = families(dict(seeds))
        if fams is None:
            return Plan(seeds, history, False, max_seeds, level)
        look = Look(number, dict(seeds))
        for fam in fams:
            for label, why in undecided(fam, level, n_boot).items():
                look.reasons.setdefault(fam.row_of[label], []).extend(why)
        history.append(look)
        more = [r for r in rows if r in look.reasons and seeds[r] < max_seeds]
        if not more or number == looks(max_seeds):
            break
        for r in more:
            seeds[r] = START + number
    return Plan(seeds, history, True, max_seeds, level)
