"""Regression check of metrics against a committed baseline, per-metric tolerance and direction.

A baseline is a JSON file: {"suite", "grid", "tolerances": {metric: tol}, "values": {key: value}} with
keys "<backbone>__<objective>__s<seed>|<sigma>|<metric>" for cells and "scored-<name>|<sigma>|<metric>" for results
of ``bench score`` (``scored-<name>@<evaluator>|...`` for those measured with another evaluator than the cells'). A
value worse than its baseline by more than
the metric's tolerance (in the metric's direction) is a regression; better by more, an improvement.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench.base.errors import BenchError
from bench.metrics import METRICS


def default_tolerances(metrics) -> dict[str, float]:
    """{metric: its registered regression tolerance} (``register_metric(tolerance=...)``)."""
    return {m: METRICS[m].tolerance for m in metrics}


def values_from_results(results: list[dict], cell_ids: set[str] | None = None) -> dict[str, float]:
    """{"<slug>|<sigma>|<metric>": value} of the finished cells (``bench.frame``), restricted to ``cell_ids``, and of
    the scored results beside them: of restorers scored as they are, and of these cells re-scored (``bench score``)."""
    from bench.frame import frame
    from bench.report import evaluation_key, evaluator_label, main_evaluation_key

    cells = [r for r in results if r.get("kind") == "cell" and (cell_ids is None or r["cell_id"] in cell_ids)]
    ids = {r["cell_id"] for r in cells}
    scored = [r for r in results if r.get("kind") == "scored"
              and ((r.get("source") or {}).get("kind") != "cell" or r["source"].get("cell_id") in ids)]
    main = main_evaluation_key(cells or scored)
    rows = list(cells)
    for r in scored:  # frame keys them "scored-<name>"; another evaluator's numbers get keys of their own
        other = evaluation_key(r) != main
        rows.append({**r, "name": r["name"] + "@" + evaluator_label(r).replace(" ", ":")} if other else r)
    df = frame(rows)
    keys = df["slug"] + "|" + df["sigma"] + "|" + df["metric"]
    return dict(zip(keys, df["value"].astype(float), strict=True))


def fingerprints_from_results(results: list[dict], cell_ids: set[str] | None = None) -> dict[str, dict[str, str]]:
    """{slug: {iteration: sha256 of the weights}} of the finished cells trained in exact arithmetic."""
    return {r["slug"]: dict(r["train"]["fingerprints"]) for r in results
            if r.get("kind") == "cell" and (cell_ids is None or r["cell_id"] in cell_ids)
            and isinstance(r.get("train"), dict) and r["train"].get("fingerprints")}


def compare_fingerprints(current: dict[str, dict[str, str]], baseline: dict[str, dict[str, str]]
                         ) -> tuple[list[str], bool]:
    """Lines saying whether exact training reproduced the baseline's weights bit for bit, and whether it did (a cell
    of the baseline without fingerprints here counts as not reproduced)."""
    from bench.base.exact import first_differing_step

    differ = []
    for slug, steps in sorted(baseline.items()):
        first = first_differing_step(current.get(slug, {}), steps)
        if first is not None:
            differ.append((int(first), slug))
    if not differ:
        steps = sorted({int(s) for v in baseline.values() for s in v})
        return [f"Training: the {len(baseline)} exact cells reproduced the baseline's weights bit for bit (after "
                f"steps {', '.join(map(str, steps))})."], True
    first = min(s for s, _ in differ)
    return [f"Training differs from the baseline's machine from step {first} "
            f"({', '.join(slug for s, slug in sorted(differ))}): exact arithmetic is not exact here; the instrument "
            "and data checks below still hold. `python -m bench.benchmarks.op_hashes` names the first operation "
            "that differs between two environments."], False


@dataclass
class Finding:
    key: str
    baseline: float
    current: float | None
    status: str  # "regression", "improvement", "ok", "missing", "not finite"


FAILING = ("regression", "missing", "not finite")


def compare(current: dict[str, float], baseline: dict[str, float], tolerances: dict[str, float]) -> list[Finding]:
    """One finding per baseline value. Fails closed: a NaN or infinite value on either side, or a tolerance that is
    not a finite number >= 0, is "not finite" (every comparison with NaN is false, so it would pass otherwise)."""
    findings = []
    for key, base in sorted(baseline.items()):
        metric = key.rsplit("|", 1)[1]
        cur = current.get(key)
        if cur is None:
            findings.append(Finding(key, base, None, "missing"))
            continue
        tol = tolerances.get(metric, METRICS[metric].tolerance)
        if not all(math.isfinite(v) for v in (base, cur, tol)) or tol < 0:
            findings.append(Finding(key, base, cur, "not finite"))
            continue
        gain = (cur - base) if METRICS[metric].higher_is_better else (base - cur)
        status = "regression" if gain < -tol else "improvement" if gain > tol else "ok"
        findings.append(Finding(key, base, cur, status))
    return findings


def render_findings(findings: list[Finding], tolerances: dict[str, float]) -> str:
    shown = [f for f in findings if f.status != "ok"]
    counts = {s: sum(f.status == s for f in findings) for s in ("regression", "improvement", "missing", "ok")}
    if any(f.status == "not finite" for f in findings):
        counts["not finite"] = sum(f.status == "not finite" for f in findings)
    head = ", ".join(f"{n} {s}" for s, n in counts.items())
    if not findings:
        return "No values to compare: the check fails.\n"
    if not shown:
        return f"All {len(findings)} values within tolerance ({head}).\n"
    lines = ["| cell | σ | metric | baseline | current | Δ | tolerance | status |", "|---|---:|---|---:|---:|---:|---:|---|"]
    for f in shown:
        slug, sigma, metric = f.key.split("|")
        cur = "–" if f.current is None else f"{f.current:.4f}"
        delta = "–" if f.current is None or f.status == "not finite" else f"{f.current - f.baseline:+.4f}"
        tol = tolerances.get(metric, METRICS[metric].tolerance)
        lines.append(f"| {slug} | {sigma} | {metric} {'↑' if METRICS[metric].higher_is_better else '↓'} | "
                     f"{f.baseline:.4f} | {cur} | {delta} | {tol:g} | **{f.status}** |")
    return "\n".join(lines) + f"\n\n{head}\n"


def read_baseline(path: Path) -> dict:
    """A baseline file, validated: every value a finite number under a "<slug>|<sigma>|<metric>" key of a known
    metric, every tolerance a finite number >= 0; one line naming the file and the key otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BenchError(f"baseline {path} does not exist; create it with --update-baseline") from None
    except (OSError, ValueError) as e:
        raise BenchError(f"baseline {path} is not a d2sm-bench baseline ({e})") from None
    problem = baseline_problem(data)
    if problem:
        raise BenchError(f"baseline {path}: {problem}; rewrite it with `bench check --update-baseline`")
    return data


def _finite_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


BASELINE_KEYS = frozenset({"suite", "grid", "tolerances", "values", "fingerprints", "instrument", "exact_selftest",
                           "derivation", "written_with"})


def baseline_problem(data) -> str | None:
    """What is wrong with a baseline's JSON (None when nothing is)."""
    if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
        return "no 'values' table (expected {\"suite\", \"grid\", \"tolerances\", \"values\"})"
    unknown = sorted(set(data) - BASELINE_KEYS)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(BASELINE_KEYS), n=1)
        return (f"unknown key {unknown[0]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; a baseline holds {', '.join(sorted(BASELINE_KEYS))}")
    if not data["values"]:
        return "'values' is empty: a check against it would pass on nothing"
    for key, v in data["values"].items():
        parts = key.split("|")
        if len(parts) != 3 or parts[2] not in METRICS:
            return f"value key {key!r} is not '<cell slug>|<sigma>|<metric>' with a metric in {', '.join(METRICS)}"
        if not _finite_number(v):
            return f"value {key!r} is {v!r}, not a finite number"
    tolerances = data.get("tolerances", {})
    if not isinstance(tolerances, dict):
        return "'tolerances' is not a table of metric: tolerance"
    for metric, tol in tolerances.items():
        if metric not in METRICS:
            return f"tolerance of unknown metric {metric!r} (known: {', '.join(METRICS)})"
        if not _finite_number(tol) or tol < 0:
            return f"tolerance {metric!r} is {tol!r}, not a finite number >= 0"
    return None
