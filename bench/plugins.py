"""Outside code that registers backbones, objectives, grids or suites: ``--plugin my_pkg.my_module`` or a file.

A plugin is imported once per process; the decorators in it (``@register_backbone`` ...) register what it
defines. Three ways in, all equivalent: ``--plugin`` (repeatable; also ``plugins = [...]`` in a grid file),
the ``d2sm_bench.plugins`` entry points of installed packages, and dotted paths (``my_pkg.nets:DnCNN``)
wherever a registered name is accepted.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from bench.base.errors import BenchError

_loaded_files: dict[Path, str] = {}
_loaded: list[str] = []  # canonical specs imported in this process, in order


def snapshot() -> tuple:
    """Which plugins this process imported, for ``restore`` (tests: a restored registry forgets what a plugin
    registered, so the plugin must be importable again)."""
    return dict(_loaded_files), list(_loaded)


def restore(state: tuple) -> None:
    files, specs = state
    _loaded_files.clear()
    _loaded_files.update(files)
    _loaded[:] = specs


def loaded() -> tuple[str, ...]:
    """The plugins this process imported (canonical forms), in order: what a result records."""
    return tuple(_loaded)


def is_file_plugin(spec: str) -> bool:
    """A plugin given as a path (``plugins/dncnn.py``) rather than a module name (``my_pkg.nets``)."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec


def canonical(spec: str, base: Path | None = None) -> str:
    """A file plugin as an absolute path (relative ones from ``base``, else the working directory); a module
    name as it is. What a run specification records, so that every process imports the same thing."""
    if not is_file_plugin(spec):
        return spec
    path = Path(spec).expanduser()
    return str((base / path if base and not path.is_absolute() else path).resolve())


def load_plugin(spec: str, base: Path | None = None) -> str:
    """Import one plugin; returns its canonical form. Errors name the plugin and the fix, in one line."""
    spec = canonical(spec, base)
    if is_file_plugin(spec):
        path = Path(spec)
        if path in _loaded_files:
            return spec
        if not path.is_file():
            raise BenchError(f"plugin {spec}: no such file; give a path to a .py file or an importable module name")
        name = f"d2sm_bench_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        _loaded_files[path] = name
        _loaded.append(spec)
        return spec
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if e.name and spec.startswith(e.name):
            raise BenchError(f"plugin {spec}: no module named {e.name!r}; install it, add its folder to "
                             "PYTHONPATH, or give the file's path") from None
        raise
    if spec not in _loaded:
        _loaded.append(spec)
    return spec


def module_name(spec: str) -> str:
    """The module a loaded plugin was imported as (a file plugin's generated name, else the module itself)."""
    return _loaded_files.get(Path(spec), spec)


def load_plugins(specs: Iterable[str], base: Path | None = None) -> tuple[str, ...]:
    """Import every plugin, in order; returns their canonical forms (duplicates once)."""
    return tuple(dict.fromkeys(load_plugin(s, base) for s in specs))
