"""Grids: the paper's tables, cell counts, shared cells, and the embedded variants."""
import csv
from pathlib import Path

import pytest

from bench.grids import GRIDS, backbone_for, get_grid
from losses import OBJECTIVES
from models import BACKBONES

PAPER = Path(__file__).resolve().parents[1] / "results" / "paper_tables.csv"


def _paper_pairs(table: str) -> set[tuple[str, str]]:
    with open(PAPER) as f:
        return {(r["backbone"], r["objective"]) for r in csv.DictReader(f) if r["table"] == table}


@pytest.mark.parametrize(("grid", "table"), [("paper-table1", "1"), ("paper-table2", "2")])
def test_paper_grids_have_exactly_the_rows_of_the_paper(grid, table):
    assert set(get_grid(grid).pairs) == _paper_pairs(table)


def test_cell_counts():
    counts = {name: len(get_grid(name).cells("synthcity")) for name in GRIDS}
    assert counts == {"smoke": 2, "objectives": 11, "paper-table1": 14, "paper-table2": 5, "full": 33,
                      "queue-sizes": 5, "d2sm-weights": 5}


def test_every_grid_names_known_backbones_and_objectives_and_unique_cells():
    for name in GRIDS:
        for suite in ("synthcity", "cityscapes"):
            cells = get_grid(name).cells(suite)
            assert len({c.cell_hash() for c in cells}) == len(cells)
            for c in cells:
                BACKBONES.get(c.backbone)
                OBJECTIVES.get(c.objective)


def test_synthcity_trains_the_reduced_variants_and_cityscapes_the_published_ones():
    synth = {c.backbone for c in get_grid("full").cells("synthcity")}
    real = {c.backbone for c in get_grid("full").cells("cityscapes")}
    assert synth == {"ffdnet_small", "cbdnet_small", "sadnet_small"} and real == {"ffdnet", "cbdnet", "sadnet"}
    assert backbone_for("ffdnet_small", "synthcity") == "ffdnet_small"


def test_grids_share_cells_so_nothing_is_trained_twice():
    full = {c.cell_hash() for c in get_grid("full").cells("synthcity")}
    for name in ("objectives", "paper-table1", "paper-table2"):
        assert {c.cell_hash() for c in get_grid(name).cells("synthcity")} <= full
    # a variant equal to the registered default is the default's cell
    for name, shared in (("queue-sizes", 3), ("d2sm-weights", 2)):
        assert len({c.cell_hash() for c in get_grid(name).cells("synthcity")} & full) == shared


def test_variants_get_their_own_cells_slugs_and_report_rows():
    cells = get_grid("queue-sizes").cells("synthcity")
    sizes = [dict(c.objective_kwargs).get("queue_size") for c in cells if c.objective == "d2sm"]
    assert sizes == [64, 128, 256] and len({c.slug() for c in cells}) == 5
    assert [c.label() for c in cells if c.objective == "d2sm"] == [
        "d2sm", "d2sm (queue_size=128)", "d2sm (queue_size=256)"]


def test_changing_a_default_weight_changes_the_cell():
    from losses.registry import OBJECTIVES

    cell = get_grid("objectives").cells("synthcity")[-1]  # d2sm_internal
    spec = OBJECTIVES.get("d2sm_internal")
    old = dict(spec.kwargs)
    try:
        spec.kwargs["weight"] = 0.123
        assert get_grid("objectives").cells("synthcity")[-1].cell_hash() != cell.cell_hash()
    finally:
        spec.kwargs.clear()
        spec.kwargs.update(old)


def test_seeds_from_the_command_line_multiply_the_cells_and_keep_seed_0s():
    from bench.cli import _grid, build_parser

    args = build_parser().parse_args(["run", "--grid", "smoke", "--seeds", "0", "1", "2", "1"])
    cells = _grid(args).cells("synthcity")
    assert sorted(c.seed for c in cells) == [0, 0, 1, 1, 2, 2]
    default = {c.cell_hash() for c in get_grid("smoke").cells("synthcity")}
    assert {c.cell_hash() for c in cells if c.seed == 0} == default
    plain = build_parser().parse_args(["run", "--grid", "smoke"])
    assert _grid(plain) == get_grid("smoke").with_precision(None)  # no seeds, no precision: the grid as registered


def test_only_selects_rows_for_a_short_trial():
    grid = get_grid("paper-table1").select(["backbone=cbdnet", "objective=d2sm"]).with_overrides(["train.iterations=200"])
    [cell] = grid.cells("synthcity")
    assert cell.backbone == "cbdnet_small" and cell.objective == "d2sm" and cell.train.iterations == 200
    full = {c.cell_hash() for c in get_grid("paper-table1").cells("synthcity")}
    assert cell.cell_hash() not in full  # a trial's length is part of its hash: it never passes for the real cell
    import pytest

    from bench.base.errors import BenchError

    with pytest.raises(BenchError, match="no row of grid paper-table1 has that backbone"):
        get_grid("paper-table1").select(["backbone=dncnn"])


def test_a_parameter_added_later_keeps_the_hashes_and_builds_what_each_cell_says():
    """``residual_init`` came after cells were measured: at PyTorch's initialisation it stays out of a cell's
    configuration (the full grid's sadnet_small l1 cell and the cityscapes backbones' keep the hashes they had
    before it), and a cell that asks for either value builds that network."""
    from bench.train import build_for_training

    before = {"sadnet_small": "c823109d68f0", "ffdnet": "c536b6f8ab2b", "cbdnet": "fea51b9d75c1",
              "sadnet": "ecc6681361fe"}  # the l1 cells' hashes before the parameter existed
    # bf16, as the machine that measured them decided for "auto" (a CPU where bf16 is not faster decides fp32)
    cells = {c.backbone: c for suite, grid in (("synthcity", get_grid("full").with_precision("bf16")),
                                               ("cityscapes", get_grid("full")))
             for c in grid.cells(suite) if c.objective == "l1"}
    assert {b: cells[b].cell_hash() for b in before} == before
    assert dict(cells["cbdnet_small"].backbone_kwargs)["residual_init"] == "zero"
    asked = get_grid("full").with_precision("bf16").with_overrides(
        ["backbone.cbdnet.residual_init=\"pytorch\""]).cells("synthcity")
    pytorch = next(c for c in asked if c.backbone == "cbdnet_small" and c.objective == "l1")
    assert dict(pytorch.backbone_kwargs)["residual_init"] == "pytorch" and pytorch.cell_hash() != cells["cbdnet_small"].cell_hash()
    for cell, zero in ((cells["cbdnet_small"], True), (pytorch, False)):
        model = build_for_training(cell.backbone, dict(cell.backbone_kwargs), cell.train, 0)
        assert bool((model.out.weight == 0).all()) is zero


def test_cells_that_would_share_a_slug_get_one_of_their_own(tmp_path):
    """Two [[cells]] of one backbone x objective that differ in training or backbone settings are two rows, two
    folders and two baseline keys, named by what differs; cells that differ in nothing else keep their hash."""
    grid = tmp_path / "dup.toml"
    grid.write_text('name = "dup"\ndescription = "d"\ntest_sigmas = [25]\n[train.synthcity]\niterations = 20\n'
                    'precision = "fp32"\n[[cells]]\nbackbone = "ffdnet_tiny"\nobjective = "l1"\n'
                    '[[cells]]\nbackbone = "ffdnet_tiny"\nobjective = "l1"\ntrain = {iterations = 30}\n'
                    '[[cells]]\nbackbone = "ffdnet_tiny"\nobjective = "ssim"\n')
    cells = get_grid(str(grid)).cells("synthcity")
    assert [c.slug() for c in cells] == ["ffdnet_tiny__l1-train.iterations=20__s0",
                                         "ffdnet_tiny__l1-train.iterations=30__s0", "ffdnet_tiny__ssim__s0"]
    assert [c.label() for c in cells][:2] == ["l1 (train.iterations=20)", "l1 (train.iterations=30)"]
    assert len({c.cell_hash() for c in cells}) == 3 and cells[2].variant == ()
    assert get_grid("smoke").cells("synthcity")[0].cell_hash() == "d6efc22684d2"  # no variant, no new hash
