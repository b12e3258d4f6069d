"""What a cell's numbers were measured with, besides its configuration: the data and the evaluator.

A cell's hash says how it was trained; its scores also depend on the val (and train) images and on the segmenter
that scores them. ``evaluation_identity`` digests both: each split's file names (relative to the data root) and
sizes, the segmenter's checkpoint sha256 and its config file's. Every result records it; ``bench run`` refuses a
results folder whose finished cells or reference rows were measured with another identity (``check_folder``), so a
run with another evaluator or data never reuses numbers made with the old one. Results written before the identity
existed are taken as this evaluator's when their recorded segmenter checkpoint sha256 is this one's.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.base.atomic import sha256_file
from bench.base.errors import BenchError
from bench.results import RESULT_FILE, read_result


def _split_digest(root: Path, samples) -> str:
    h = hashlib.sha256()
    for s in samples:
        for p in (Path(s.image_path), Path(s.label_path)):
            try:
                name = str(p.resolve().relative_to(Path(root).resolve()))
            except ValueError:  # a label root outside the data root
                name = p.name
            h.update(f"{name}|{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def evaluation_identity(root: Path, splits: dict, segmenter) -> dict:
    """{"key", "data": {split: digest}, "segmenter": {"checkpoint", "config"}}; ``splits``: {name: samples}."""
    config = Path(str(segmenter.config_path))
    seg = {"checkpoint": segmenter.checkpoint_sha256,
           "config": sha256_file(config) if config.is_file() else str(segmenter.config_path)}
    data = {name: _split_digest(root, samples) for name, samples in sorted(splits.items())}
    key = hashlib.sha256(json.dumps({"data": data, "segmenter": seg}, sort_keys=True).encode()).hexdigest()[:16]
    return {"key": key, "data": data, "segmenter": seg}


def differs(result: dict, identity: dict) -> str | None:
    """What differs between a result's measurement and ``identity`` (None when nothing does)."""
    recorded = result.get("evaluation") or {}
    if not recorded.get("key"):  # written before the identity existed: its segmenter checkpoint decides
        sha = ((result.get("weights") or {}).get("segmenter") or {}).get("sha256")
        return None if sha in (None, identity["segmenter"]["checkpoint"]) else "segmenter checkpoint"
    if recorded["key"] == identity["key"]:
        return None
    parts = [f"{s} split" for s in identity["data"] if (recorded.get("data") or {}).get(s) != identity["data"][s]]
    parts += [f"segmenter {k}" for k in ("checkpoint", "config")
              if (recorded.get("segmenter") or {}).get(k) != identity["segmenter"][k]]
    return " and ".join(parts) or "evaluation"


def check_folder(folders: list[Path], identity: dict) -> None:
    """BenchError (one line) if a finished result in ``folders`` was measured with another identity."""
    for folder in folders:
        path = Path(folder) / RESULT_FILE
        if not path.is_file():
            continue
        what = differs(read_result(path), identity)
        if what:
            raise BenchError(f"{path} was measured with another {what} than this run: use another --results folder "
                             "for this evaluator or data, or --rerun to recompute these cells")
