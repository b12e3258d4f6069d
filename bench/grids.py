"""Grids: named sets of backbone x objective cells with their training and test settings.

One model is trained per cell (blind over sigma in [0, sigma_max]) and tested at every test sigma,
as in the paper. A grid is a TOML file (``bench/grid_files/*.toml`` are the built-in ones; ``--grid
path/to/grid.toml`` any other, format in ``load_grid_file``), a ``Grid`` registered by a plugin, or a
dotted path to one. The synthcity settings are scaled to a 2-core CPU; the cityscapes settings are the
paper's (400 epochs of 2975 images at batch 8, 512 crops, Adam 1e-4). In the synthcity suite a backbone
``X`` trains as ``X_small`` where one is registered (``ffdnet`` -> ``ffdnet_small``), whose name appears
in the results and tables.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.base.errors import BenchError
from bench.base.registry import Registry, UnknownNameError, unknown_name_message
from bench.config import CellConfig, TrainConfig, freeze
from bench.metrics.registry import DEFAULT_METRICS, metric_names_from

# A higher learning rate than the paper's 1e-4 and later halvings (50/75/90 %): the embedded suite trains
# for ~10^3, not ~10^5, steps (measured: +1.2 dB at sigma 25 over the paper's 20/40/60/80 % at 600 steps; lr 3e-4
# and 1e-4 measured worse). Iterations are what the small networks lack (FFDNet 48 x 8 at sigma 25: 21.7 dB after
# 600, 23.3 after 1200, 24.1 after 1600; ffdnet_small is 48 x 6 since: 25.1 after 1600), paid for by bf16 where the
# machine has it ("auto"); a 5 % warm-up and
# gradient-norm clipping at 0.2 keep cbdnet_small's seeds together (its gradient norm is ~0.2; EMA and a cosine
# schedule measured no better), and cbdnet_small starts as the identity (residual_init="zero": seeds 0-4 within
# 0.08 dB instead of 0.39). `python -m bench.benchmarks.training_levers` measures every lever.
SYNTHCITY_TRAIN = TrainConfig(iterations=1600, batch=8, crop=64, lr=1e-3, milestones=(0.5, 0.75, 0.9),
                              checkpoint_every=100, warmup=0.05, grad_clip=0.2, precision="auto")
CITYSCAPES_TRAIN = TrainConfig(iterations=400 * 2975 // 8, batch=8, crop=512, lr=1e-4, checkpoint_every=2000)
DEFAULT_TRAIN = {"synthcity": SYNTHCITY_TRAIN, "cityscapes": CITYSCAPES_TRAIN}
GRID_FILES = Path(__file__).with_name("grid_files")

Params = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Entry:
    """One row of a grid: a backbone, an objective, and what this row changes of their parameters and training."""

    backbone: str
    objective: str
    objective_params: Params = ()
    backbone_params: Params = ()
    train: Params = ()  # TrainConfig fields over the suite's settings
    seeds: tuple[int, ...] = ()  # this row's training seeds when not the grid's (``--seeds auto``: per row)

    def to_dict(self) -> dict:
        return {"backbone": self.backbone, "objective": self.objective,
                "objective_params": dict(self.objective_params), "backbone_params": dict(self.backbone_params),
                "train": dict(self.train), **({"seeds": list(self.seeds)} if self.seeds else {})}


def backbone_for(name: str, suite: str) -> str:
    """The backbone a suite trains for a grid's backbone name (synthcity: ``name_small`` where registered)."""
    from models.registry import BACKBONES

    return f"{name}_small" if suite == "synthcity" and f"{name}_small" in BACKBONES.names() else name


def product(backbones: Iterable[str], objectives: Iterable[str], objective_params: dict | None = None,
            backbone_params: dict | None = None) -> tuple[Entry, ...]:
    """Every backbone with every objective, with per-name parameters (``{"d2sm": {"queue_size": 128}}``)."""
    op, bp = objective_params or {}, backbone_params or {}
    return tuple(Entry(b, o, _params(op.get(o, {})), _params(bp.get(b, {}))) for b in backbones for o in objectives)


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    entries: tuple[Entry, ...]  # in table order
    test_sigmas: tuple[float, ...] = (25.0, 35.0, 50.0)
    seeds: tuple[int, ...] = (0,)
    train: dict[str, TrainConfig] = field(default_factory=lambda: dict(DEFAULT_TRAIN))
    plugins: tuple[str, ...] = ()  # what must be imported to build its cells (canonical: absolute paths for files)
    suite: str | None = None  # the suite a grid file asks for (the command line's --suite wins)
    protocol: str = "ours"  # measurement protocol of every cell (bench.protocol)
    metrics: tuple[str, ...] = DEFAULT_METRICS  # what each cell is scored with (bench.metrics; not in the cell hash)
    test_degradation: str = ""  # the test inputs' degradation when not the training one (bench.degradations)
    test_degradation_params: Params = ()

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple((e.backbone, e.objective) for e in self.entries)

    def with_precision(self, precision: str | None, device: str = "cpu") -> Grid:
        """This grid with every suite's training precision set to ``precision`` (None: the grid's own) and "auto"
        decided for ``device`` (``bench.precision``), so that every cell's configuration and hash say what ran."""
        from bench.precision import resolve

        def decide(requested: str, arithmetic: str) -> str:  # exact arithmetic is fp32 by definition
            if arithmetic != "exact":
                return resolve(requested, device)
            if requested == "bf16":
                raise BenchError(f"grid {self.name} trains with arithmetic 'exact', which is fp32 only: drop "
                                 "--precision bf16, or set train.arithmetic=native")
            return "fp32"

        train = {s: replace(t, precision=decide(precision or t.precision, t.arithmetic)) for s, t in self.train.items()}
        entries = []
        for e in self.entries:  # a row's own precision: dropped for a precision given, else decided too
            own = dict(e.train)
            arithmetic = own.get("arithmetic", "native")
            if precision:
                own.pop("precision", None)
                if arithmetic == "exact":
                    own["precision"] = decide(precision, arithmetic)
            elif "precision" in own or arithmetic == "exact":
                own["precision"] = decide(own.get("precision", "auto"), arithmetic)
            entries.append(replace(e, train=_params(own)))
        return replace(self, train=train, entries=entries)

    def with_protocol(self, protocol: str | None) -> Grid:
        """Every cell measured with ``protocol`` ("ours" or "authors"; None: the grid's own)."""
        from bench.protocol import PROTOCOLS

        if protocol is None:
            return self
        if protocol not in PROTOCOLS:
            raise BenchError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
        return replace(self, protocol=protocol)

    def with_seeds(self, seeds: Iterable[int] | None) -> Grid:
        return replace(self, seeds=tuple(dict.fromkeys(seeds))) if seeds else self

    def with_row_seeds(self, seeds: dict[int, Iterable[int]]) -> Grid:
        """This grid with row ``i``'s seeds replaced by ``seeds[i]`` (rows not named keep the grid's)."""
        return replace(self, entries=tuple(replace(e, seeds=tuple(seeds[i])) if i in seeds else e
                                           for i, e in enumerate(self.entries)))

    def select(self, filters: Iterable[str]) -> Grid:
        """The rows matching every ``KEY=VALUE`` filter (keys: backbone, objective, label; ``backbone=ffdnet``
        matches the suite's ``ffdnet_small`` too); a filter matching no row is an error."""
        entries = self.entries
        for item in filters:
            key, eq, value = item.partition("=")
            if not eq or key not in ("backbone", "objective"):
                raise BenchError(f"--only {item!r}: expected backbone=NAME or objective=NAME")
            entries = tuple(e for e in entries if value in (getattr(e, key), getattr(e, key).removesuffix("_small"),
                                                            backbone_for(getattr(e, key), "synthcity")))
            if not entries:
                names = sorted({getattr(e, key) for e in self.entries})
                raise BenchError(f"--only {item!r}: no row of grid {self.name} has that {key} (it has "
                                 f"{', '.join(names)})")
        return replace(self, entries=entries)

    def with_overrides(self, items: Iterable[str]) -> Grid:
        """``--set`` items applied in order (``apply_override``)."""
        grid = self
        for item in items:
            grid = apply_override(grid, item)
        return grid

    def cells(self, suite: str) -> list[CellConfig]:
        """The grid's cells, each with the effective backbone and objective parameters in its configuration (so
        changing a registered default, say a loss weight, gives new cells instead of reusing stale ones).
        A precision left at "auto" is decided here for the CPU (``with_precision`` decides it for a device)."""
        from losses.registry import objective_params
        from models.registry import backbone_params

        grid = self.with_precision(None)
        if suite not in grid.train:
            raise BenchError(f"grid {self.name} has no training settings for suite {suite!r} "
                             f"(it has {', '.join(grid.train)})")
        out = []
        for e in grid.entries:
            backbone = backbone_for(e.backbone, suite)
            bk = _params(hashed_params(backbone, backbone_params(backbone, **dict(e.backbone_params))))
            own = dict(e.objective_params)
            if self.protocol == "authors":  # the objective's own reading of the authors' protocol, unless set
                from losses.registry import OBJECTIVES

                own = {**getattr(OBJECTIVES.get(e.objective).factory, "authors_params", {}), **own}
            ok = _params(objective_params(e.objective, **own))
            train = train_with(grid.train[suite], dict(e.train), f"grid {self.name}, {e.backbone} x {e.objective}")
            out.append(CellConfig(suite=suite, backbone=backbone, objective=e.objective, train=train,
                                  test_sigmas=self.test_sigmas, seed=0, backbone_kwargs=bk, objective_kwargs=ok,
                                  protocol=self.protocol, test_degradation=self.test_degradation,
                                  test_degradation_params=self.test_degradation_params))
        # variants are decided per row (at one seed), so a row's cells keep their slug whatever seeds other rows have
        rows = distinguish(out)
        return [dataclasses.replace(c, seed=s) for c, e in zip(rows, grid.entries, strict=True)
                for s in (e.seeds or self.seeds)]

    def row_cells(self, suite: str) -> list[CellConfig]:
        """One cell per row (at seed 0), in table order: what a row is, whatever its seeds."""
        return self.with_row_seeds({i: (0,) for i in range(len(self.entries))}).cells(suite)

    def to_dict(self) -> dict:
        """Everything needed to build the same cells in another process (``grid_from_dict``)."""
        return {"name": self.name, "description": self.description, "entries": [e.to_dict() for e in self.entries],
                "test_sigmas": list(self.test_sigmas), "seeds": list(self.seeds),
                "train": {s: json_ready(dataclasses.asdict(t)) for s, t in self.train.items()},
                "plugins": list(self.plugins), "suite": self.suite, "protocol": self.protocol,
                "metrics": list(self.metrics), "test_degradation": self.test_degradation,
                "test_degradation_params": dict(self.test_degradation_params)}


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True)
    return out


def distinguish(cells: list[CellConfig]) -> list[CellConfig]:
    """Cells of one grid that would share a slug (and so a table row and a baseline key) get a ``variant``: what
    differs between them ("train.iterations=300", "backbone.depth=4"). Other cells are returned unchanged."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cells):
        groups.setdefault(c.slug(), []).append(i)
    out = list(cells)
    for indices in groups.values():
        if len({cells[i].cell_hash() for i in indices}) < 2:
            continue
        flats = []
        for i in indices:
            d = {k: v for k, v in cells[i].to_dict().items() if k not in ("seed", "backbone_kwargs", "objective_kwargs")}
            d["backbone"] = dict(cells[i].backbone_kwargs)
            d["objective"] = dict(cells[i].objective_kwargs)
            flats.append(_flat(d))
        keys = sorted(k for k in set().union(*flats) if len({f.get(k) for f in flats}) > 1)
        for i, f in zip(indices, flats, strict=True):
            out[i] = dataclasses.replace(cells[i], variant=tuple(
                f"{k}={json.loads(f[k]) if k in f else '-'}".replace(" ", "") for k in keys))
    return out


def grid_from_dict(d: dict) -> Grid:
    from bench.config import train_from_dict

    return Grid(d["name"], d["description"],
                tuple(Entry(e["backbone"], e["objective"], _params(e["objective_params"]),
                            _params(e["backbone_params"]), _params(e["train"]), tuple(e.get("seeds", ())))
                      for e in d["entries"]),
                tuple(float(s) for s in d["test_sigmas"]), tuple(d["seeds"]),
                {s: train_from_dict(t) for s, t in d["train"].items()}, tuple(d["plugins"]), d.get("suite"),
                d.get("protocol", "ours"), tuple(d.get("metrics", DEFAULT_METRICS)), d.get("test_degradation", ""),
                _params(d.get("test_degradation_params", {})))


def json_ready(v: Any) -> Any:
    return [json_ready(x) for x in v] if isinstance(v, list | tuple) else (
        {k: json_ready(x) for k, x in v.items()} if isinstance(v, dict) else v)


def _params(d: dict) -> Params:
    """Sorted (name, value) pairs, hashable (sequences as tuples); their JSON is what the cell hash reads."""
    from bench.config import freeze

    return tuple((k, freeze(v)) for k, v in sorted(d.items()))


TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def hashed_params(backbone: str, params: dict) -> dict:
    """A backbone's effective parameters as a cell's configuration holds them: those its class lists in
    ``legacy_defaults`` (parameters added after cells were measured) are left out at that value, so those cells keep
    their hash and the network they name."""
    from models.registry import BACKBONES

    spec = BACKBONES.get(backbone)
    legacy = getattr(spec.factory, "legacy_defaults", {})
    # left out only where building without it gives that very value (a variant registered with another keeps it)
    return {k: v for k, v in params.items() if not (k in legacy and legacy[k] == v and k not in spec.kwargs)}


def train_with(base: TrainConfig, changes: dict, where: str) -> TrainConfig:
    """``base`` with ``changes`` (TrainConfig field -> value, as TOML gives them); one-line errors naming ``where``."""
    if not changes:
        return base
    values = {}
    for key, value in changes.items():
        if key not in TRAIN_FIELDS:
            raise UnknownNameError(unknown_name_message(f"training setting ({where})", key, TRAIN_FIELDS))
        current = getattr(base, key)
        if key == "degradation_params":
            if not isinstance(value, dict):
                raise BenchError(f"training setting degradation_params ({where}): expected a table of the "
                                 f"degradation's parameters, like {{quality = 50}}, not {value!r}")
            values[key] = tuple(sorted((k, freeze(v)) for k, v in value.items()))
            continue
        if isinstance(current, tuple) and isinstance(value, list | tuple):
            value = tuple(float(v) for v in value)
        elif isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(current):
            raise BenchError(f"training setting {key} ({where}): expected a {type(current).__name__} like "
                             f"{current!r}, not {value!r}")
        values[key] = value
    if isinstance(values.get("degradation"), str):  # an unknown name before what it would rule out
        from bench.degradations import DEGRADATIONS

        DEGRADATIONS.get(values["degradation"])
    try:
        made = replace(base, **values)
    except ValueError as e:
        raise BenchError(f"training settings ({where}): {e}") from None
    if "degradation" in values or "degradation_params" in values:
        from bench.degradations import build_degradation

        build_degradation(made.degradation, made.degradation_params)  # unknown names and parameters: one line
    return made


# --- overrides: --set key=value ------------------------------------------------------------------------------

def parse_value(text: str) -> Any:
    """A TOML value (``0.003``, ``[0, 1]``, ``"x"``, ``true``); anything else as a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(grid: Grid, item: str) -> Grid:
    """One ``--set`` item: ``train[.SUITE].FIELD=V``, ``objective[.NAME].PARAM=V``, ``backbone[.NAME].PARAM=V``,
    ``seeds=[..]``, ``test_sigmas=[..]``, ``metrics=[..]``. A parameter applies to every row whose objective (backbone) takes it;
    an item that applies to no row is an error."""
    key, eq, text = item.partition("=")
    if not eq or not key:
        raise BenchError(f"--set {item!r}: expected KEY=VALUE, e.g. objective.weight=0.003 or train.iterations=1200")
    value, parts = parse_value(text), key.split(".")
    if key == "metrics":
        return replace(grid, metrics=metric_names_from(value, f"--set {item}"))
    if key == "test_degradation":
        return with_test_degradation(grid, value, grid.test_degradation_params, f"--set {item}")
    if key in ("seeds", "test_sigmas"):
        seq = value if isinstance(value, list) else [value]
        check = seeds_from if key == "seeds" else test_sigmas_from
        return replace(grid, **{key: check(seq, f"--set {item}")})
    if parts[0] == "train" and len(parts) in (2, 3):
        suites = [parts[1]] if len(parts) == 3 else list(grid.train)
        if len(parts) == 3 and parts[1] not in grid.train:
            raise UnknownNameError(unknown_name_message(f"suite of --set {item!r}", parts[1], grid.train))
        return replace(grid, train={**grid.train, **{s: train_with(grid.train[s], {parts[-1]: value}, f"--set {item}")
                                                     for s in suites}})
    if parts[0] in ("objective", "backbone") and len(parts) in (2, 3):
        kind, name, param = parts[0], (parts[1] if len(parts) == 3 else None), parts[-1]
        entries, hit = [], False
        for e in grid.entries:
            own = e.objective if kind == "objective" else e.backbone
            if (name is None or name in (own, backbone_for(own, "synthcity"))) and param in _accepted(kind, own):
                field_name = f"{kind}_params"
                e = replace(e, **{field_name: _params({**dict(getattr(e, field_name)), param: value})})
                hit = True
            entries.append(e)
        if not hit:
            raise BenchError(f"--set {item!r}: no {kind}{' ' + name if name else ''} of grid {grid.name} takes a "
                             f"parameter {param!r}")
        return replace(grid, entries=tuple(entries))
    raise BenchError(f"--set {item!r}: KEY must be train[.SUITE].FIELD, objective[.NAME].PARAM, "
                     "backbone[.NAME].PARAM, seeds, test_sigmas or metrics")


def with_test_degradation(grid: Grid, name: Any, params: Params, where: str) -> Grid:
    """``grid`` scored on inputs of degradation ``name`` (registered; parameters checked): one line naming ``where``."""
    from bench.degradations import build_degradation

    if not isinstance(name, str) or not name:
        raise BenchError(f"{where}: test_degradation must be a degradation's name (`bench list` names them)")
    build_degradation(name, params)
    return replace(grid, test_degradation=name, test_degradation_params=params)


def _accepted(kind: str, name: str) -> set[str]:
    from losses.registry import OBJECTIVES
    from models.registry import BACKBONES

    return (OBJECTIVES if kind == "objective" else BACKBONES).get(name).accepted()


# --- grid files ----------------------------------------------------------------------------------------------

GRID_FILE_KEYS = ("name", "description", "plugins", "suite", "seeds", "test_sigmas", "metrics", "test_degradation",
                  "test_degradation_params", "backbones", "objectives", "products", "cells", "backbone_params",
                  "objective_params", "train")


def load_grid_file(path: Path) -> Grid:
    """A grid from a TOML file::

        description = "my denoiser against two built-in objectives"
        plugins = ["my_plugin.py"]            # files (relative to this file) or module names, imported first
        suite = "synthcity"                   # optional: the suite `bench run` uses unless --suite says otherwise
        seeds = [0]                           # optional
        test_sigmas = [25, 50]                # optional (default 25, 35, 50)
        metrics = ["psnr", "ms_ssim", "miou"] # optional (default psnr, ssim, miou): registered metric names
        test_degradation = "poisson_gaussian" # optional: score on other inputs than [train] degradation gives
        [test_degradation_params]             # its parameters (optional)
        read_slope = 2.18
        backbones = ["dncnn", "ffdnet"]       # every backbone x every objective ("*": every registered one)
        objectives = ["charbonnier", "l1"]
        [[products]]                          # more blocks of backbones x objectives (optional)
        backbones = ["cbdnet"]
        objectives = ["l1"]
        [[cells]]                             # single rows with their own parameters (optional)
        backbone = "ffdnet"
        objective = "d2sm"
        objective_params = {queue_size = 128}
        train = {iterations = 800}
        [objective_params.charbonnier]        # parameters of every row with this objective (backbone_params too)
        eps = 1e-3
        [train]                               # TrainConfig fields over the suites' settings, every suite ...
        iterations = 400
        degradation = "poisson_gaussian"      # what training adds (default gaussian); degradation_params = {...}
        [train.synthcity]                     # ... or one suite
        precision = "fp32"
    """
    from bench.plugins import load_plugins

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"grid file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BenchError(f"grid file {path} is unreadable ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"grid file {path} is not valid TOML ({e})") from None
    for key in data:
        if key not in GRID_FILE_KEYS:
            raise UnknownNameError(unknown_name_message(f"key in grid file {path}", key, GRID_FILE_KEYS))
    where = f"grid file {path}"
    _check_tables(data, where)
    plugins = load_plugins(_str_list(data.get("plugins", []), "plugins", where), base=path.parent)
    op, bp = data.get("objective_params", {}), data.get("backbone_params", {})
    blocks = ([{"backbones": data["backbones"], "objectives": data["objectives"]}]
              if "backbones" in data or "objectives" in data else []) + list(data.get("products", []))
    entries: list[Entry] = []
    for block in blocks:
        entries += product(_names(block.get("backbones"), "backbones", where),
                           _names(block.get("objectives"), "objectives", where), op, bp)
    for c in data.get("cells", []):
        if not isinstance(c, dict) or not {"backbone", "objective"} <= set(c):
            raise BenchError(f"{where}: every [[cells]] needs backbone and objective")
        entries.append(Entry(c["backbone"], c["objective"],
                             _params({**op.get(c["objective"], {}), **c.get("objective_params", {})}),
                             _params({**bp.get(c["backbone"], {}), **c.get("backbone_params", {})}),
                             _params(c.get("train", {}))))
    if not entries:
        raise BenchError(f"{where}: no cells; give backbones and objectives, [[products]] or [[cells]]")
    train = dict(DEFAULT_TRAIN)
    tables = ("degradation_params",)  # [train] keys whose value is a table; any other table is a suite's
    common = {k: v for k, v in data.get("train", {}).items() if not isinstance(v, dict) or k in tables}
    for suite, base in train.items():
        train[suite] = train_with(base, {**common, **data.get("train", {}).get(suite, {})}, f"{where} [train]")
    for suite in (k for k, v in data.get("train", {}).items() if isinstance(v, dict) and k not in tables):
        if suite not in train:
            raise UnknownNameError(unknown_name_message(f"suite in {where} [train]", suite, train))
    grid = Grid(data.get("name", path.stem), data.get("description", str(path)), tuple(entries),
                test_sigmas_from(data.get("test_sigmas", [25.0, 35.0, 50.0]), f"{where}: test_sigmas"),
                seeds_from(data.get("seeds", [0]), f"{where}: seeds"), train, plugins, data.get("suite"),
                metrics=metric_names_from(data.get("metrics", list(DEFAULT_METRICS)), f"{where}: metrics"))
    if "test_degradation_params" in data and "test_degradation" not in data:
        raise BenchError(f"{where}: test_degradation_params needs test_degradation (the degradation they are for)")
    if "test_degradation" in data:
        params = data.get("test_degradation_params", {})
        if not isinstance(params, dict):
            raise BenchError(f"{where}: test_degradation_params must be a table of the degradation's parameters")
        grid = with_test_degradation(grid, data["test_degradation"], _params(params), where)
    for e in entries:  # unknown names and parameters fail here, naming the file
        _check_entry(e, where)
    named = {"objective_params": {e.objective for e in entries}, "backbone_params": {e.backbone for e in entries}}
    for table, names in named.items():  # parameters for a row the grid does not have are a typo, not a no-op
        for name in data.get(table, {}):
            if name not in names:
                kind = table.split("_")[0]
                raise UnknownNameError(unknown_name_message(f"{kind} of this grid's rows in [{table}] of {where}",
                                                            name, sorted(names)))
    return grid


CELL_KEYS = ("backbone", "objective", "objective_params", "backbone_params", "train")
PRODUCT_KEYS = ("backbones", "objectives")


def _check_tables(data: dict, where: str) -> None:
    """Types and keys of a grid file's tables: one line naming the file and the key."""
    for key, kind in (("products", list), ("cells", list), ("objective_params", dict), ("backbone_params", dict),
                      ("train", dict)):
        if key in data and not isinstance(data[key], kind):
            raise BenchError(f"{where}: {key} must be {'an array of tables ([[' + key + ']])' if kind is list else 'a table'}"
                             f", not {type(data[key]).__name__}")
    for key, allowed in (("products", PRODUCT_KEYS), ("cells", CELL_KEYS)):
        for block in data.get(key, []):
            if not isinstance(block, dict):
                raise BenchError(f"{where}: every [[{key}]] must be a table")
            for k in block:
                if k not in allowed:
                    raise UnknownNameError(unknown_name_message(f"key in [[{key}]] of {where}", k, allowed))
            for k in ("objective_params", "backbone_params", "train"):
                if k in block and not isinstance(block[k], dict):
                    raise BenchError(f"{where}: {k} of a [[{key}]] must be a table")
    for key in ("objective_params", "backbone_params"):
        for name, params in data.get(key, {}).items():
            if not isinstance(params, dict):
                raise BenchError(f"{where}: [{key}.{name}] must be a table of parameters")


def _number_list(v: Any, where: str) -> list:
    if not isinstance(v, list) or not v:
        raise BenchError(f"{where} must be a non-empty list, not {v!r}")
    return v


def test_sigmas_from(v: Any, where: str) -> tuple[float, ...]:
    """Test noise levels: a non-empty list of numbers in (0, 255] (the 0-255 scale)."""
    out = []
    for s in _number_list(v, where):
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0 < s <= 255:
            raise BenchError(f"{where}: {s!r} is not a noise level in (0, 255] on the 0-255 scale")
        out.append(float(s))
    keys = [f"{s:g}" for s in out]
    if len(set(keys)) < len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise BenchError(f"{where}: two levels print as {dup} (results key levels by their short form); give "
                         "distinct levels")
    return tuple(out)


def seeds_from(v: Any, where: str) -> tuple[int, ...]:
    """Seeds: a non-empty list of distinct non-negative integers."""
    out = []
    for s in _number_list(v, where):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise BenchError(f"{where}: {s!r} is not a non-negative integer seed")
        out.append(s)
    if len(set(out)) != len(out):
        raise BenchError(f"{where}: seeds repeat ({out})")
    return tuple(out)


def _check_entry(e: Entry, where: str) -> None:
    from losses.registry import OBJECTIVES
    from models.registry import BACKBONES

    try:
        BACKBONES.get(e.backbone).check_params(dict(e.backbone_params), where)
        OBJECTIVES.get(e.objective).check_params(dict(e.objective_params), where)
    except UnknownNameError as err:
        raise UnknownNameError(f"{where}: {err}") from None


def _str_list(v: Any, key: str, where: str) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BenchError(f"{where}: {key} must be a list of strings")
    return v


def _names(v: Any, key: str, where: str) -> list[str]:
    """A list of names, or "*": every registered backbone (without its variants, ``<backbone>_small`` and
    ``ffdnet_tiny``: names ``<registered backbone>_<variant>``) or objective."""
    if v == "*":
        from losses.registry import OBJECTIVES
        from models.registry import BACKBONES

        if key == "objectives":
            return OBJECTIVES.names()
        names = BACKBONES.names()
        return [n for n in names if not ("_" in n and n.rsplit("_", 1)[0] in names)]
    if v is None:
        raise BenchError(f"{where}: a block of cells needs both backbones and objectives")
    return _str_list(v, key, where)


# --- the registry --------------------------------------------------------------------------------------------

def _builtin_grids() -> None:
    for path in sorted(GRID_FILES.glob("*.toml")):
        GRIDS.add(path.stem, _LazyGrid(path), order=_BUILTIN_ORDER.get(path.stem, 500.0))


_BUILTIN_ORDER = {"smoke": 0, "objectives": 1, "paper-table1": 2, "paper-table2": 3, "queue-sizes": 4,
                  "d2sm-weights": 5, "full": 6}


@dataclass(frozen=True)
class _LazyGrid:
    """A grid file read on first use (its "*" lists see every plugin loaded by then)."""

    path: Path


def _grid_object(name: str, obj: Any) -> Grid:
    """A Grid, or a function returning one (entry points, dotted paths, ``register_grid``)."""
    if isinstance(obj, _LazyGrid):
        return load_grid_file(obj.path)
    if callable(obj) and not isinstance(obj, Grid):
        obj = obj()
    if not isinstance(obj, Grid):
        raise BenchError(f"grid {name!r} is a {type(obj).__name__}, not a bench.grids.Grid")
    return obj


class GridRegistry(Registry):
    """Holds grids, grid files (read on first use) and functions returning a grid; ``get`` gives the ``Grid``."""

    def get(self, name: str) -> Grid:
        return _grid_object(name, super().get(name))


GRIDS = GridRegistry("grid", builtins=_builtin_grids, entry_point_group="d2sm_bench.grids")


def register_grid(name: str) -> Callable:
    """Decorator of a function returning a ``Grid`` (called when the grid is asked for), or ``GRIDS.add``."""
    return GRIDS.register(name)


def get_grid(ref: str) -> Grid:
    """A grid by registered name, TOML file path or dotted path ``my_pkg.grids:MINE``."""
    if ref.endswith(".toml") or ("/" in ref and ":" not in ref):
        return load_grid_file(Path(ref))
    return GRIDS.get(ref)


def grid_names() -> list[str]:
    return GRIDS.names()
