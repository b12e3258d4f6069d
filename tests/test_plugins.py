"""Open registries: no import circles; plugins by --plugin (module or file), entry points and dotted paths;
grid files and --set; the result schema (old results still read)."""
import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.base.errors import BenchError
from bench.grids import get_grid, load_grid_file

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "models", "losses", "seg_eval")

NETS = '''
import torch
from models.base import Denoiser


class TinyNet(Denoiser):
    """A one-convolution denoiser."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, noisy, sigma=None):
        return noisy - self.conv(noisy)
'''
OBJS = '''
import torch
from losses.base import Objective
from losses.registry import register_objective


@register_objective("tiny_l2", "mean squared error, from a plugin")
class TinyL2(Objective):
    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = weight

    def forward(self, restored, clean, batch=None):
        term = self.weight * ((restored - clean) ** 2).mean()
        return term, {"tiny_l2": float(term.detach())}
'''


def _module_imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """Project modules that ``name`` imports at module level (what runs when it is imported)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for t in targets:
            parts = t.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c imports a and a.b first
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    out.add(prefix)  # (a module's own packages are being imported already: not an edge)
    return out


def test_no_import_circles_among_the_projects_modules():
    files = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            files[".".join(parts)] = path
    graph = {m: _module_imports(p, m, set(files)) for m, p in files.items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert {"models.base", "losses.base", "bench.plugins"} <= set(graph)


def _bench(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, **(env or {})})


def test_plugins_by_file_and_by_module_name(tmp_path):
    (tmp_path / "my_objs.py").write_text(OBJS)
    p = _bench("list", "--plugin", str(tmp_path / "my_objs.py"))
    assert p.returncode == 0, p.stderr
    assert "tiny_l2" in p.stdout and "from a plugin" in p.stdout
    p = _bench("list", "--plugin", "my_objs", env={"PYTHONPATH": str(tmp_path)})
    assert p.returncode == 0 and "tiny_l2" in p.stdout
    for bad, message in (("missing_module_xyz", "no module named 'missing_module_xyz'"),
                         (str(tmp_path / "nope.py"), "no such file")):
        p = _bench("list", "--plugin", bad)
        assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


def test_entry_points_register_backbones_and_plugin_modules(tmp_path):
    """An installed package's entry points, as pip would leave them (a dist-info folder on the path)."""
    (tmp_path / "ep_nets.py").write_text(NETS)
    (tmp_path / "ep_objs.py").write_text(OBJS)
    info = tmp_path / "ep_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[d2sm_bench.backbones]\ntinynet = ep_nets:TinyNet\n\n"
                                           "[d2sm_bench.plugins]\nobjs = ep_objs\n")
    p = _bench("list", env={"PYTHONPATH": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    assert "tinynet" in p.stdout and "A one-convolution denoiser" in p.stdout and "tiny_l2" in p.stdout


def test_dotted_paths_wherever_a_name_is_accepted(tmp_path, monkeypatch):
    from losses import build_objective
    from models import build_backbone

    (tmp_path / "dot_nets.py").write_text(NETS)
    (tmp_path / "dot_objs.py").write_text(OBJS.replace('@register_objective("tiny_l2", "mean squared error, from a '
                                                       'plugin")\n', ""))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert type(build_backbone("dot_nets:TinyNet", width=8)).__name__ == "TinyNet"
    assert type(build_objective("dot_objs:TinyL2", weight=0.5)).__name__ == "TinyL2"
    grid_file = tmp_path / "g.toml"
    grid_file.write_text('backbones = ["dot_nets:TinyNet"]\nobjectives = ["l1", "dot_objs:TinyL2"]\n'
                         '[objective_params."dot_objs:TinyL2"]\nweight = 0.25\n')
    cells = load_grid_file(grid_file).cells("synthcity")
    assert [c.slug() for c in cells] == ["dot_nets.TinyNet__l1__s0", "dot_nets.TinyNet__dot_objs.TinyL2-weight=0.25__s0"]
    assert dict(cells[1].objective_kwargs) == {"weight": 0.25}
    with pytest.raises(BenchError, match="cannot import module 'dot_nowhere'"):
        build_backbone("dot_nowhere:Net")
    with pytest.raises(BenchError, match="no restore"):
        build_backbone("torch.nn:Identity")


def test_grid_files_and_overrides(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(textwrap.dedent('''
        description = "test grid"
        seeds = [0, 1]
        test_sigmas = [25]
        backbones = ["ffdnet"]
        objectives = ["l1", "d2sm"]
        [[cells]]
        backbone = "cbdnet"
        objective = "d2sm"
        objective_params = { queue_size = 128 }
        train = { iterations = 50 }
        [objective_params.d2sm]
        weight = 0.003
        [train]
        iterations = 100
        [train.cityscapes]
        crop = 256
    '''))
    grid = load_grid_file(f)
    cells = grid.cells("synthcity")
    assert len(cells) == 6 and {c.seed for c in cells} == {0, 1} and cells[0].test_sigmas == (25.0,)
    assert [c.train.iterations for c in cells] == [100, 100, 100, 100, 50, 50]
    last = dict(cells[-1].objective_kwargs)
    assert last["queue_size"] == 128 and last["weight"] == 0.003 and cells[-1].backbone == "cbdnet_small"
    assert grid.cells("cityscapes")[0].train.crop == 256 and cells[0].train.crop == 64
    over = grid.with_overrides(["objective.weight=0.01", "train.lr=3e-4", "seeds=[2]"])
    oc = over.cells("synthcity")
    assert {dict(c.objective_kwargs)["weight"] for c in oc if c.objective == "d2sm"} == {0.01}
    assert "weight" not in dict(oc[0].objective_kwargs) and {c.seed for c in oc} == {2} and oc[0].train.lr == 3e-4
    only = grid.with_overrides(["objective.d2sm.queue_size=256"]).cells("synthcity")
    assert [dict(c.objective_kwargs).get("queue_size") for c in only if c.objective == "d2sm"] == [256] * 4
    assert get_grid(str(f)) == grid


@pytest.mark.parametrize("text, message", [
    ("backbones = ['ffdnet']\nobjectivs = ['l1']\n", "did you mean 'objectives'"),
    ("backbones = ['ffdnet'\n", "not valid TOML"),
    ("backbones = ['ffdnet']\nobjectives = ['l1']\n[objective_params.l1]\nweigth = 2\n", "'weigth'"),
    ("backbones = ['ffdnet']\nobjectives = ['l1']\n[train]\niterations = 'many'\n", "expected a int"),
    ("backbones = ['ffdnet']\nobjectives = ['l2']\n", "unknown objective 'l2'"),
    ("plugins = ['absent.py']\nbackbones = ['ffdnet']\nobjectives = ['l1']\n", "no such file"),
])
def test_bad_grid_files_fail_in_one_line_naming_the_file(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    p = _bench("status", "--grid", str(f), "--results", str(tmp_path / "r"))
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_cli_takes_grid_files_plugins_and_set(tmp_path):
    (tmp_path / "objs.py").write_text(OBJS)
    (tmp_path / "g.toml").write_text('plugins = ["objs.py"]\nbackbones = ["ffdnet"]\nobjectives = ["tiny_l2", "l1"]\n')
    p = _bench("status", "--grid", str(tmp_path / "g.toml"), "--set", "objective.weight=2", "--results", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert "ffdnet_small__tiny_l2-weight=2__s0 | pending" in p.stdout and "ffdnet_small__l1__s0" in p.stdout
    p = _bench("status", "--set", "objective.nothing=1", "--results", str(tmp_path))
    assert p.returncode == 2 and "takes a parameter 'nothing'" in p.stderr


def _schema1_cell() -> dict:
    """A result as the previous bench wrote it (schema 1: no label, no run options)."""
    metrics = {"25": {"psnr": 30.0, "ssim": 0.9, "miou": 0.5}}
    return {"schema": 1, "kind": "cell", "cell_id": "abc", "slug": "ffdnet_small__d2sm-queue_size=128__s0",
            "config": {"backbone": "ffdnet_small", "objective": "d2sm", "objective_kwargs": [["queue_size", 128]]},
            "metrics": metrics, "train": {}, "objective_params": {"queue_size": 128}, "seed": 0,
            "weights": {"segmenter": {"sha256": "0123456789abcdef"}}, "env": {}, "created": "2026-01-01T00:00:00+00:00"}


def test_old_results_still_read_and_label_their_rows_as_written(tmp_path):
    from bench.report import render_report
    from bench.results import load_results

    folder = tmp_path / "synthcity" / "ffdnet_small__d2sm-queue_size=128__s0-abc"
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(_schema1_cell()))
    [r] = load_results(tmp_path, "synthcity")
    assert r["schema"] == 3 and r["label"] == "d2sm (queue_size=128)" and r["precision"] == "fp32"
    assert "d2sm (queue_size=128)" in render_report([r], "old")


@pytest.mark.parametrize("change, field", [
    ({"metrics": {"25": {"psnr": "high", "ssim": 0.9, "miou": 0.5}}}, "'metrics.25.psnr'"),
    ({"seed": "zero"}, "'seed'"),
    ({"kind": "table"}, "'kind'"),
    ({"schema": 7}, "schema 7"),
])
def test_malformed_results_name_the_file_and_the_field(tmp_path, change, field):
    from bench.results import read_result

    path = tmp_path / "result.json"
    path.write_text(json.dumps({**_schema1_cell(), **change}))
    with pytest.raises(BenchError) as e:
        read_result(path)
    assert str(path) in str(e.value) and field in str(e.value)
    bad = {k: v for k, v in _schema1_cell().items() if k != "metrics"}
    path.write_text(json.dumps(bad))
    with pytest.raises(BenchError, match="field 'metrics' is missing"):
        read_result(path)


def test_the_example_plugin_builds_its_grid_without_touching_the_package():
    grid = get_grid(str(ROOT / "examples" / "grid.toml"))
    cells = grid.cells("synthcity")
    tag = "@salt_pepper-fraction=0.02"  # the example's plugin degradation
    assert [c.slug() for c in cells] == [f"dncnn_small__{o}{tag}__s0" for o in ("charbonnier", "l1", "ssim")]
    assert grid.metrics == ("psnr", "ssim", "gmsd", "miou")
    assert all(p.endswith(".py") and Path(p).is_absolute() for p in grid.plugins)
