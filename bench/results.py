"""Results on disk: one folder per cell, ``result.json`` written atomically once the cell is done.

``<results>/<suite>/<slug>-<hash>/`` holds ``result.json`` (the done marker and the numbers),
``train.pth`` (the resumable training checkpoint) and ``log.txt``. Reference rows ("noisy input",
"clean input") live in ``<results>/<suite>/reference-<hash>/``.

``CellResult`` and ``ReferenceResult`` are the one definition of ``result.json`` (schema 3: metrics keyed by their
registered names, ``bench.metrics``, with ``metric_info`` naming what measured each); ``write_result`` the one
writer; ``read_result`` validates a file against them (naming the file and the field) and reads schema 1 and 2 files
as schema 3 (their metrics: psnr, ssim, miou). Readers get the validated dict: the fields below, plus ``_path``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.base.atomic import atomic_write_json
from bench.base.errors import BenchError

SCHEMA = 3
READABLE_SCHEMAS = (1, 2, 3)
RESULT_FILE = "result.json"
SCHEMA2_METRICS = ("psnr", "ssim", "miou")  # what every schema 1 and 2 result holds


@dataclass(frozen=True)
class CellResult:
    """A finished cell. ``metrics``: {sigma ("25"): {<metric name>: value, "per_image": {"ids", <metric name> | its
    areas' keys: per-image values}, "per_class_iou", "areas", ...}}; ``metric_info``: {metric name: what measured
    it}; ``label``: the table row's name, fixed when the cell was written (the objective, with the
    parameters that differed from the defaults registered then: "d2sm (queue_size=128)")."""

    cell_id: str
    slug: str
    label: str
    config: dict  # CellConfig.to_dict()
    metrics: dict
    train: dict  # training summary (iterations_run, final_terms, curve, seconds ...)
    objective_params: dict  # the effective objective parameters
    seed: int
    precision: str
    weights: dict  # checksums of the networks the numbers depend on
    env: dict
    created: str
    eval_seconds: float = 0.0
    parameters: int = 0
    peak_rss_mb: float = 0.0
    run: dict = field(default_factory=dict)  # how it was run: val_every, plugins
    evaluation: dict = field(default_factory=dict)  # the data and evaluator it was scored with (bench.identity)
    metric_info: dict = field(default_factory=dict)  # {metric: description}: the metrics scored, what measured them
    kind: str = "cell"


@dataclass(frozen=True)
class ReferenceResult:
    """The unrestored rows: ``metrics`` {"noisy input" | "clean input": {sigma: {"psnr", "ssim", "miou", ...}}}."""

    config: dict  # suite, test_sigmas, seed
    metrics: dict
    weights: dict
    env: dict
    created: str
    eval_seconds: float = 0.0
    evaluation: dict = field(default_factory=dict)  # the data and evaluator it was scored with (bench.identity)
    metric_info: dict = field(default_factory=dict)  # {metric: description}
    kind: str = "reference"


@dataclass(frozen=True)
class ScoredResult:
    """A restorer scored without being trained here (``bench score``): a network with outside weights, or a folder
    of restored images. ``name``: its table row; ``source``: what was scored ({"kind": "model", "model", "params",
    "weights_sha256"} or {"kind": "restored", "folder", "sha256"}); ``config``: the test settings (suite,
    test_sigmas, seed, protocol, the degradation; ``backbone`` "scored", the table group); ``metrics`` as a cell's."""

    scored_id: str
    name: str
    source: dict
    config: dict
    metrics: dict
    weights: dict
    env: dict
    created: str
    eval_seconds: float = 0.0
    evaluation: dict = field(default_factory=dict)
    metric_info: dict = field(default_factory=dict)
    kind: str = "scored"


KINDS = {"cell": CellResult, "reference": ReferenceResult, "scored": ScoredResult}


def write_result(folder: Path, result: CellResult | ReferenceResult) -> Path:
    """The one writer of ``result.json`` (atomic: a reader sees the whole file or none)."""
    path = Path(folder) / RESULT_FILE
    data = {"schema": SCHEMA, **dataclasses.asdict(result)}
    validate_result(json.loads(json.dumps(data)), path)  # a file that would be refused on reading is never written
    atomic_write_json(path, data)
    return path


def label_from_slug(slug: str) -> str:
    """A schema-1 result's label from its slug (``backbone__objective-k=v-k2=v2__s0`` -> "objective (k=v, k2=v2)"):
    the slug's variant part was computed from the defaults registered when the cell was written."""
    middle = slug.split("__")[1] if slug.count("__") >= 2 else slug
    name, *changed = middle.split("-")
    return name + (" (" + ", ".join(changed) + ")" if changed else "")


def _upgrade(data: dict) -> dict:
    """Schema 1 -> 2: the label from the slug, no run options recorded. 2 -> 3: the three metrics every schema 2
    result holds, as ``metric_info``."""
    if data.get("schema") == 1 and data.get("kind") == "cell":
        data = {**data, "label": label_from_slug(str(data.get("slug", ""))), "run": data.get("run", {})}
        data.setdefault("precision", data.get("config", {}).get("train", {}).get("precision", "fp32"))
    if data.get("schema") in (1, 2):
        data = {**data, "metric_info": {m: f"{m} (schema {data['schema']})" for m in SCHEMA2_METRICS}}
    return {**data, "schema": SCHEMA}


def scored_metrics(result: dict) -> list[str]:
    """The metrics a (validated) result holds, in the registry's order."""
    from bench.metrics import ordered

    return ordered(result.get("metric_info") or SCHEMA2_METRICS)


_TYPES = {"str": str, "dict": dict, "int": int, "float": (int, float)}


def validate_result(data: Any, path: Path) -> dict:
    """``data`` checked against its kind's fields; one-line errors name the file and the field."""
    fix = "delete its folder to recompute the cell"
    if not isinstance(data, dict):
        raise BenchError(f"result file {path} is not a JSON object; {fix}")
    if data.get("schema") not in READABLE_SCHEMAS:
        raise BenchError(f"result file {path} has schema {data.get('schema')!r}; this bench reads "
                         f"{', '.join(map(str, READABLE_SCHEMAS))} ({fix}, or use the bench that wrote it)")
    data = _upgrade(data)
    kind = data.get("kind")
    if kind not in KINDS:
        raise BenchError(f"result file {path}: field 'kind' is {kind!r}, expected one of {', '.join(KINDS)}; {fix}")
    for f in dataclasses.fields(KINDS[kind]):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise BenchError(f"result file {path}: field {f.name!r} is missing; {fix}")
            continue
        expected = _TYPES[str(f.type)]
        if not isinstance(data[f.name], expected) or isinstance(data[f.name], bool):
            raise BenchError(f"result file {path}: field {f.name!r} should be a {f.type}, not "
                             f"{type(data[f.name]).__name__}; {fix}")
    if kind == "cell":
        for key in ("backbone", "objective"):
            if not isinstance(data["config"].get(key), str):
                raise BenchError(f"result file {path}: field 'config.{key}' is missing; {fix}")
        if not data["metrics"]:
            raise BenchError(f"result file {path}: field 'metrics' is empty (a cell scored at no sigma); {fix}")
    if not data.get("metric_info") or not all(isinstance(k, str) for k in data["metric_info"]):
        raise BenchError(f"result file {path}: field 'metric_info' names no metric; {fix}")
    ranges = _value_ranges(data["metric_info"])
    rows = data["metrics"].values() if kind == "reference" else [data["metrics"]]
    for by_sigma in rows:
        for sigma, m in (by_sigma.items() if isinstance(by_sigma, dict) else ()):
            for key, (low, high) in ranges.items():
                if not isinstance(m, dict) or not isinstance(m.get(key), int | float) or isinstance(m.get(key), bool):
                    raise BenchError(f"result file {path}: field 'metrics.{sigma}.{key}' is missing or not a "
                                     f"number; {fix}")
                if not low <= m[key] <= high:  # NaN fails too
                    raise BenchError(f"result file {path}: field 'metrics.{sigma}.{key}' is {m[key]}, outside "
                                     f"[{low}, {high}]; {fix}")
            per = m.get("per_image", {})
            if not isinstance(per, dict) or not isinstance(per.get("ids", []), list):
                raise BenchError(f"result file {path}: field 'metrics.{sigma}.per_image' is not a table of per-image "
                                 f"lists; {fix}")
            n = len(per.get("ids", []))
            bad = [k for k, v in per.items() if not isinstance(v, list) or len(v) != n]
            if bad:
                raise BenchError(f"result file {path}: field 'metrics.{sigma}.per_image.{bad[0]}' has "
                                 f"{len(per[bad[0]]) if isinstance(per[bad[0]], list) else 'no'} entries for {n} "
                                 f"image ids; {fix}")
    return data


def _value_ranges(names) -> dict[str, tuple[float, float]]:
    """{metric: the closed range its values may take}; a metric no loaded code registers may hold any number."""
    from bench.metrics import METRICS

    return {n: (METRICS.get(n).range if n in METRICS and ":" not in n else (-float("inf"), float("inf")))
            for n in names}


def read_result(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"result file {path} is unreadable or corrupt ({e}); delete its folder to recompute the cell") from None
    return validate_result(data, Path(path))


def _is_result_folder(name: str, result: dict) -> bool:
    """A cell's result is read from its own folder, ``<slug>-<cell_id>``; the reference rows' from ``reference-*``.
    Anything else (a backup copy ``cell.bak/``, a folder renamed or copied by hand) is not read as a result."""
    if result.get("kind") == "reference":
        return name.startswith("reference-")
    if result.get("kind") == "scored":
        return name.startswith("scored-") and name.endswith(f"-{result.get('scored_id')}")
    return name == f"{result.get('slug')}-{result.get('cell_id')}"


def load_results(root: Path, suite: str) -> list[dict]:
    """Every finished result of ``suite`` under ``root``, validated, each with its ``_path``; files in folders that
    are not a cell's or the reference rows' own (``_is_result_folder``) are left out."""
    base = Path(root) / suite
    out = []
    for path in sorted(base.glob(f"*/{RESULT_FILE}")):
        r = read_result(path)
        if not _is_result_folder(path.parent.name, r):
            continue
        r["_path"] = str(path)
        out.append(r)
    return out


def require_results(root: Path, suite: str) -> None:
    """A one-line error when ``<root>/<suite>`` does not exist: a mistyped --results must not read as "nothing
    finished yet"."""
    if not (Path(root) / suite).is_dir():
        raise BenchError(f"results folder {Path(root) / suite} does not exist: nothing has run there (pass --results "
                         "DIR where `bench run` wrote, or run the grid first)")


def check_writable(root: Path) -> None:
    """A one-line error unless files can be created in ``root`` (made if absent). Each process probes with a file
    of its own: workers and jobs check the same folder at once."""
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-probe-"):
            pass
    except OSError as e:
        raise BenchError(f"results folder {root} is not writable ({e.strerror}); pass --results DIR") from None
