"""Results on disk: one folder per cell, ``result.json`` written atomically once the cell is done.

``<results>/<suite>/<slug>-<hash>/`` holds ``result.json`` (the done marker and the numbers),
``train.pth`` (the resumable training checkpoint, removed with --no-keep-checkpoints) and
``log.txt``. Reference rows ("noisy input", "clean input") live in ``<results>/<suite>/reference-<hash>/``.
"""
from __future__ import annotations

import json
from pathlib import Path

from bench.atomic import atomic_write_json
from bench.errors import BenchError

SCHEMA = 1
RESULT_FILE = "result.json"


def write_result(folder: Path, result: dict) -> Path:
    path = folder / RESULT_FILE
    atomic_write_json(path, {"schema": SCHEMA, **result})
    return path


def read_result(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BenchError(f"result file {path} is unreadable or corrupt ({e}); delete its folder to recompute the cell") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or "metrics" not in data:
        raise BenchError(f"result file {path} is not a d2sm-bench result of schema {SCHEMA}; delete it to recompute")
    return data


def load_results(root: Path, suite: str) -> list[dict]:
    """Every finished result of ``suite`` under ``root``, each with its ``_path``."""
    base = Path(root) / suite
    out = []
    for path in sorted(base.glob(f"*/{RESULT_FILE}")):
        r = read_result(path)
        r["_path"] = str(path)
        out.append(r)
    return out


def check_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise BenchError(f"results folder {root} is not writable ({e.strerror}); pass --results DIR") from None
