"""The layers the folders show (docs/architecture.md), checked on every module's imports, at the top of the file or
inside functions: models/, losses/ and seg_eval/ import nothing of bench outside bench.base; bench.base imports
nothing of bench above it; the reading side (frame, stats, report, plots, check, claims, results) never imports the
training loop or the runner."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
READING = ("frame", "stats", "report", "plots", "check", "claims", "results", "trained")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _bench_imports(path: Path) -> set[str]:
    return {m for m in _imports(path) if m == "bench" or m.startswith("bench.")}


@pytest.mark.parametrize("package", ["models", "losses", "seg_eval"])
def test_the_lower_packages_import_only_the_base_layer_of_bench(package):
    bad = {f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / package).rglob("*.py") for m in _bench_imports(p)
           if not (m == "bench.base" or m.startswith("bench.base."))}
    assert not bad, sorted(bad)


def test_the_base_layer_imports_nothing_above_it():
    bad = {f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "bench" / "base").rglob("*.py") for m in _bench_imports(p)
           if not (m == "bench.base" or m.startswith("bench.base."))}
    assert not bad, sorted(bad)
    for package in ("models", "losses", "seg_eval"):  # nor the packages above it
        assert not any(m.split(".")[0] == package for p in (ROOT / "bench" / "base").rglob("*.py")
                       for m in _imports(p)), package


def test_the_reading_side_never_imports_the_training_loop_or_the_runner():
    forbidden = ("bench.train", "bench.runner", "bench.launchers", "bench.distributed")
    bad = {f"{name}: {m}" for name in READING for m in _bench_imports(ROOT / "bench" / f"{name}.py")
           if any(m == f or m.startswith(f + ".") for f in forbidden)}
    assert not bad, sorted(bad)
