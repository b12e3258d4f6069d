"""Where the project keeps generated data and trained weights (never scanned at import)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """``$D2SM_BENCH_CACHE``, else ``~/.cache/d2sm-bench``: generated datasets and embedded weights."""
    env = os.environ.get("D2SM_BENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "d2sm-bench"


def default_results_root() -> Path:
    return REPO_ROOT / "results" / "runs"
