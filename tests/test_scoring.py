"""bench score and bench noisy: a network trained here, scored as a cell, through --model with its weights, and
through --restored on PNGs another process wrote from `bench noisy`'s inputs, gives the same numbers; every bad
--restored / --weights input is one line."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.base.errors import BenchError

ROOT = Path(__file__).parents[1]

RESTORE_ELSEWHERE = r"""
import sys, json, pathlib, numpy as np, torch
from PIL import Image
from bench.scoring import load_model
noisy_dir, out_dir, weights = map(pathlib.Path, sys.argv[1:4])
model = load_model("ffdnet_small", {}, weights)
manifest = json.loads((noisy_dir / "manifest.json").read_text())
for level in manifest["levels"]:
    (out_dir / level).mkdir(parents=True, exist_ok=True)
    for f in sorted((noisy_dir / level).glob("*.npy")):
        if f.name.endswith(".map.npy"):
            continue
        x = torch.from_numpy(np.load(f))[None]
        sigma = torch.tensor([manifest["noise_level"][level][f.stem]])
        with torch.no_grad():
            y = model.restore(x, sigma)
        u8 = (y.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
        Image.fromarray(u8).save(out_dir / level / (f.stem + ".png"))
"""


def test_a_cell_scored_three_ways_gives_the_same_numbers(tmp_path):
    from test_end_to_end import GRID, _suite

    from bench.base.noise import quantize  # noqa: F401 (the chain every path shares)
    from bench.cell_state import CHECKPOINT_FILE
    from bench.degradations import build_degradation
    from bench.grids import Grid
    from bench.report import render_report
    from bench.results import load_results, read_result
    from bench.runner import Context, run_grid
    from bench.scoring import (
        RestoredFolder,
        ScoreSettings,
        from_cell,
        load_model,
        restore_fn,
        score,
        write_noisy,
    )

    grid = Grid("one", "test", GRID.entries[:1], test_sigmas=(25.0, 50.0), train=GRID.train)
    assert run_grid(grid, _suite(), tmp_path / "runs", log=lambda *_: None) == (0, 1, 0)
    [cell] = [r for r in load_results(tmp_path / "runs", "synthcity") if r["kind"] == "cell"]
    weights = Path(cell["_path"]).with_name(CHECKPOINT_FILE)
    ctx = Context(_suite(), "cpu", lambda *_: None)
    settings = ScoreSettings.of_grid(grid, "synthcity")
    noisy = tmp_path / "noisy"
    write_noisy(noisy, ctx.val, settings.test_sigmas, 0, build_degradation("gaussian"), {"suite": "synthcity"})
    manifest = json.loads((noisy / "manifest.json").read_text())
    assert len(manifest["sha256"]) == 2 * len(ctx.val) and manifest["levels"] == ["25", "50"]
    outputs = tmp_path / "outputs"
    done = subprocess.run([sys.executable, "-c", RESTORE_ELSEWHERE, str(noisy), str(outputs), str(weights)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    by_model = read_result(score(ctx, restore_fn(load_model("ffdnet_small", {}, weights)), settings, "as model",
                                 {"kind": "model"}, tmp_path / "runs"))
    by_pngs = read_result(score(ctx, RestoredFolder(outputs, ctx.val, settings.test_sigmas), settings, "as pngs",
                                {"kind": "restored"}, tmp_path / "runs"))
    for level in ("25", "50"):
        for metric in ("psnr", "ssim", "miou"):
            want = cell["metrics"][level][metric]
            assert by_model["metrics"][level][metric] == pytest.approx(want, abs=1e-6)
            assert by_pngs["metrics"][level][metric] == pytest.approx(want, abs=1e-6)
        assert by_pngs["metrics"][level]["per_image"]["ids"] == cell["metrics"][level]["per_image"]["ids"]
    model, cell_settings, source, name = from_cell(Path(cell["_path"]).parent)  # re-scored, no training
    assert source["cell_id"] == cell["cell_id"] and cell_settings.test_sigmas == (25.0, 50.0)
    rescored = read_result(score(ctx, restore_fn(model), cell_settings, name, source, tmp_path / "runs"))
    assert rescored["metrics"]["50"]["miou"] == pytest.approx(cell["metrics"]["50"]["miou"], abs=1e-6)
    assert read_result(Path(cell["_path"])) == {k: v for k, v in cell.items() if k != "_path"}  # untouched
    results = load_results(tmp_path / "runs", "synthcity")
    assert sorted(r["kind"] for r in results) == ["cell", "reference", "scored", "scored", "scored"]
    text = render_report(results, "scored")
    assert "| scored | as model |" in text and "Group *scored*" in text


def test_a_bf16_cell_is_rescored_and_scored_in_its_own_precision(tmp_path):
    """A cell trained in bf16 restores its test images under bf16 autocast, channels_last: --cell does the same, and
    --model does with --precision bf16 (in fp32 the numbers differ by about 0.01 dB on a trained network)."""
    import dataclasses

    from test_end_to_end import GRID, _suite

    from bench.cell_state import CHECKPOINT_FILE
    from bench.grids import Grid
    from bench.results import load_results, read_result
    from bench.runner import Context, run_grid
    from bench.scoring import ScoreSettings, from_cell, load_model, restore_fn, score

    train = {"synthcity": dataclasses.replace(GRID.train["synthcity"], precision="bf16")}
    grid = Grid("one", "test", GRID.entries[:1], test_sigmas=(25.0,), train=train)
    assert run_grid(grid, _suite(), tmp_path / "runs", log=lambda *_: None) == (0, 1, 0)
    [cell] = [r for r in load_results(tmp_path / "runs", "synthcity") if r["kind"] == "cell"]
    assert cell["config"]["train"]["precision"] == "bf16"
    ctx = Context(_suite(), "cpu", lambda *_: None)
    model, settings, source, name = from_cell(Path(cell["_path"]).parent)
    assert settings.precision == "bf16" and settings.to_dict("synthcity")["precision"] == "bf16"
    rescored = read_result(score(ctx, restore_fn(model), settings, name, source, tmp_path / "runs"))
    of_grid, as_bf16 = ScoreSettings.of_grid(grid, "synthcity"), ScoreSettings.of_grid(grid, "synthcity", precision="bf16")
    weights = Path(cell["_path"]).with_name(CHECKPOINT_FILE)
    by_model = read_result(score(ctx, restore_fn(as_bf16.prepared(load_model("ffdnet_small", {}, weights))), as_bf16,
                                 "as model", {"kind": "model"}, tmp_path / "runs"))
    in_fp32 = read_result(score(ctx, restore_fn(load_model("ffdnet_small", {}, weights)), of_grid, "in fp32",
                                {"kind": "model"}, tmp_path / "runs"))
    assert abs(in_fp32["metrics"]["25"]["psnr"] - cell["metrics"]["25"]["psnr"]) > 1e-4  # the test can tell them
    for metric in ("psnr", "ssim", "miou"):
        want = cell["metrics"]["25"][metric]
        assert rescored["metrics"]["25"][metric] == pytest.approx(want, abs=1e-6)
        assert by_model["metrics"]["25"][metric] == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError, match="precision 'auto'"):
        ScoreSettings((25.0,), 0, "ours", ("gaussian", ()), "auto")


def _folder(tmp_path, sizes, drop=None, extra=None, bad=None):
    for image_id, (h, w) in sizes.items():
        d = tmp_path / "25"
        d.mkdir(parents=True, exist_ok=True)
        if image_id == drop:
            continue
        arr = np.zeros((h, w, 3), np.uint8)
        if bad == ("size", image_id):
            arr = np.zeros((h, w + 1, 3), np.uint8)
        im = Image.fromarray(arr[..., 0] if bad == ("mode", image_id) else arr)
        im.save(d / f"{image_id}.png")
        if bad == ("corrupt", image_id):
            (d / f"{image_id}.png").write_bytes(b"\x89PNG garbage")
    if extra:
        (tmp_path / "25" / extra).write_bytes(b"x")
    return tmp_path


class _Val:
    def __init__(self, sizes):
        from types import SimpleNamespace

        self.samples = [SimpleNamespace(image_id=i) for i in sizes]
        self.sizes = list(sizes.values())

    def __getitem__(self, i):
        h, w = self.sizes[i]
        return torch.zeros(3, h, w, dtype=torch.uint8), None


@pytest.mark.parametrize("case, message", [
    (dict(drop="b"), r"1 of 2 outputs missing \(b.png\)"),
    (dict(extra="c.png"), r"1 files that match no val image \(c.png\)"),
    (dict(bad=("size", "a")), r"a.png is 9x8, its input 8x8"),
    (dict(bad=("mode", "b")), r"b.png is a PNG of mode L; expected an 8-bit RGB PNG"),
    (dict(bad=("corrupt", "a")), r"a.png cannot be decoded"),
])
def test_bad_restored_folders_are_one_line(tmp_path, case, message):
    from bench.scoring import RestoredFolder

    sizes = {"a": (8, 8), "b": (8, 8)}
    root = _folder(tmp_path, sizes, **case)
    with pytest.raises(BenchError, match=message):
        RestoredFolder(root, _Val(sizes), (25.0,))
    with pytest.raises(BenchError, match="not a folder"):
        RestoredFolder(tmp_path / "nope", _Val(sizes), (25.0,))


def test_weights_layouts_are_recognised_or_refused_with_their_keys(tmp_path):
    from bench.scoring import load_model, read_weights
    from models import build_backbone

    net = build_backbone("ffdnet_small")
    sd = net.state_dict()
    for i, obj in enumerate([sd, {"state_dict": sd}, {"model": sd, "epoch": 3}, {"params": sd},
                             {f"module.{k}": v for k, v in sd.items()}]):
        torch.save(obj, tmp_path / f"w{i}.pth")
        loaded = load_model("ffdnet_small", {}, tmp_path / f"w{i}.pth")
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), sd.values(), strict=True))
    torch.save({"generator": sd, "step": 1}, tmp_path / "other.pth")
    with pytest.raises(BenchError, match=r"not a state dict of tensors.*found \['generator', 'step'\]"):
        read_weights(tmp_path / "other.pth")
    torch.save({"x": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(BenchError, match="do not fit --model ffdnet_small: keys missing"):
        load_model("ffdnet_small", {}, tmp_path / "wrong.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="cannot be loaded with weights_only=True"):
        read_weights(tmp_path / "junk.pth")
    with pytest.raises(BenchError, match="does not exist"):
        read_weights(tmp_path / "none.pth")
    with pytest.raises(BenchError, match="defines no 'Nope'"):
        load_model(f"{ROOT / 'examples' / 'dncnn.py'}:Nope", {}, tmp_path / "w0.pth")
    with pytest.raises(BenchError, match=r"body.0.weight has shape \(48, 13, 3, 3\), the model's is \(16, 13, 3, 3\)"):
        load_model("ffdnet_small", {"width": 16}, tmp_path / "w0.pth")  # same keys, other widths
    import fractions

    torch.save({"ratio": fractions.Fraction(1, 3)}, tmp_path / "pickled.pth")  # a class off torch's allow-list
    with pytest.raises(BenchError, match=r"weights_only=True \(Unsupported global: GLOBAL fractions.Fraction"):
        read_weights(tmp_path / "pickled.pth")


def test_the_cli_refuses_bad_weights_in_one_line(tmp_path):
    from bench.cli import main

    assert main(["score", "--model", "ffdnet_small", "--weights", str(tmp_path / "none.pth")]) == 2
    assert main(["score", "--model", "ffdnet_small"]) == 2
    assert main(["score", "--model", "ffdnet_small", "--weights", "x", "--model-params", "[1]"]) == 2
    assert main(["score", "--cell", str(tmp_path)]) == 2  # no result.json there


def test_a_model_file_that_a_grid_also_names_as_a_plugin_is_imported_once(tmp_path):
    from bench.grids import get_grid
    from bench.scoring import load_model
    from models import build_backbone

    get_grid(str(ROOT / "examples" / "grid.toml"))  # imports examples/dncnn.py as the grid's plugin
    net = build_backbone("dncnn_small", depth=6)
    torch.save({"model": net.state_dict()}, tmp_path / "w.pth")
    loaded = load_model(f"{ROOT / 'examples' / 'dncnn.py'}:DnCNN", {"depth": 6, "width": 32}, tmp_path / "w.pth")
    assert type(loaded).__name__ == "DnCNN" and type(loaded) is type(net)


def _png16(w: int, h: int) -> bytes:
    """A valid 16-bit RGB PNG (Pillow cannot write one)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(w * 6) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_what_a_hostile_reviewer_found_is_one_line(tmp_path):
    """Each of these was a traceback or a silent wrong answer before (an audit of score, noisy and the registries)."""
    from test_metric_registry import _Seg, _val

    from bench.base.registry import import_object
    from bench.degradations import build_degradation
    from bench.evaluate import evaluate
    from bench.grids import get_grid, load_grid_file
    from bench.metrics import metric_specs
    from bench.scoring import RestoredFolder, write_noisy

    val = _val(tmp_path / "val")
    cpu = torch.device("cpu")
    for restorer, message in ((lambda x, s: x[:, :1], r"returned \(3, 1, 112, 144\) for inputs of shape \(3, 3, 112"),
                              (lambda x, s: x * float("nan"), "non-finite values")):
        with pytest.raises(BenchError, match=message):  # a 1-channel output broadcast into a plausible PSNR
            evaluate(restorer, val, (25.0,), 0, _Seg(), cpu, metrics=("psnr",))
    sizes = {"a": (8, 8)}
    (tmp_path / "r" / "25").mkdir(parents=True)
    (tmp_path / "r" / "25" / "a.png").write_bytes(_png16(8, 8))  # Pillow opens it as "RGB", high bytes only
    with pytest.raises(BenchError, match="16 bits per channel"):
        RestoredFolder(tmp_path / "r", _Val(sizes), (25.0,))
    with pytest.raises(BenchError, match="which the list already names"):
        metric_specs(["psnr", "bench.metrics.builtin.psnr:psnr"])
    with pytest.raises(BenchError, match="read_slope must be a finite number > 0"):
        build_degradation("poisson_gaussian", {"read_slope": 0.0})
    with pytest.raises(BenchError, match="no module before"):
        import_object(":Class")
    with pytest.raises(BenchError, match="two levels print as 25"):
        get_grid("paper-table2").with_overrides(["test_sigmas=[25, 25.000001]"])
    f = tmp_path / "g.toml"
    f.write_text('backbones = ["ffdnet"]\nobjectives = ["l1"]\n[test_degradation_params]\nquality = 30\n')
    with pytest.raises(BenchError, match="test_degradation_params needs test_degradation"):
        load_grid_file(f)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.npy").write_bytes(b"x")
    with pytest.raises(BenchError, match="is not empty"):
        write_noisy(tmp_path / "used", val, (25.0,), 0, build_degradation("gaussian"), {})
    (tmp_path / "file").write_text("x")
    with pytest.raises(BenchError, match="is not a folder"):
        write_noisy(tmp_path / "file", val, (25.0,), 0, build_degradation("gaussian"), {})


def test_restored_outputs_are_tied_to_the_inputs_they_were_made_from(tmp_path):
    from test_metric_registry import _val

    from bench.cli import main
    from bench.degradations import build_degradation
    from bench.scoring import ScoreSettings, check_noisy_manifest, write_noisy

    val = _val(tmp_path / "val")
    write_noisy(tmp_path / "in", val, (25.0, 50.0), 0, build_degradation("gaussian"),
                {"suite": "synthcity", "degradation": ["gaussian", {}], "protocol": "ours"})
    ok = ScoreSettings((25.0, 50.0), 0, "ours", ("gaussian", ()))
    assert len(check_noisy_manifest(tmp_path / "in", ok, "synthcity")) == 64
    for settings, field in ((ScoreSettings((25.0, 50.0), 1, "ours", ("gaussian", ())), "seed"),
                            (ScoreSettings((25.0,), 0, "ours", ("gaussian", ())), "levels"),
                            (ScoreSettings((25.0, 50.0), 0, "ours", ("poisson_gaussian", ())), "degradation")):
        with pytest.raises(BenchError, match=f"written for {field}"):
            check_noisy_manifest(tmp_path / "in", settings, "synthcity")
    with pytest.raises(BenchError, match="has no manifest.json"):
        check_noisy_manifest(tmp_path / "val", ok, "synthcity")
    assert main(["score", "--model", "ffdnet_small", "--weights", "w", "--noisy", str(tmp_path / "in")]) == 2


TINY_GRID = """backbones = ["ffdnet"]
objectives = ["l1", "ssim", "cross_entropy"]
seeds = [0, 1]
test_sigmas = [25, 50]
[train.synthcity]
iterations = 6
batch = 2
crop = 32
lr = 1e-3
checkpoint_every = 3
"""


def _tiny_cli(monkeypatch):
    """The command line on the tests' tiny synthcity (its options, and whichever --evaluator it names)."""
    from test_end_to_end import TINY

    import bench.cli
    from bench.suites import SuiteOptions
    from seg_eval.train_embedded import SegTrainSpec

    monkeypatch.setattr(bench.cli, "_suite_options", lambda args: SuiteOptions(
        synthcity=TINY, seg_train=SegTrainSpec(iterations=4, batch=2, crop=64), evaluator=args.evaluator))


def test_cells_rescored_under_the_second_evaluator_give_rank_agreement(tmp_path, monkeypatch, capsys):
    """bench score --rescore --evaluator erfnet: every finished cell of the grid scored again from its weights
    (no training; the second evaluator trained by prepare on first use), beside the cells; a second call skips
    them; report --agreement prints tau; check's values take the re-scored rows under keys of their own."""
    from test_end_to_end import TINY, _suite

    from bench.check import values_from_results
    from bench.cli import main
    from bench.grids import load_grid_file
    from bench.results import load_results, read_result
    from bench.suites import SuiteOptions, build_suite
    from seg_eval.train_embedded import SegTrainSpec

    f = tmp_path / "g.toml"
    f.write_text(TINY_GRID)
    runs = tmp_path / "runs"
    assert run_grid_quietly(load_grid_file(f), _suite(), runs) == (0, 6, 0)
    before = {r["_path"]: read_result(r["_path"]) for r in load_results(runs, "synthcity") if r["kind"] == "cell"}
    _tiny_cli(monkeypatch)
    rescore = ["score", "--rescore", "--grid", str(f), "--results", str(runs), "--evaluator", "erfnet"]
    assert main(rescore) == 0
    err = capsys.readouterr().err
    assert "re-scoring 6 finished cells" in err and "re-scored 6 cells (0 already were)" in err, err
    assert "training the embedded segmenter erfnet" in err  # the second evaluator, trained by prepare on first use
    results = load_results(runs, "synthcity")
    scored = [r for r in results if r["kind"] == "scored"]
    assert len(scored) == 6 and {r["source"]["kind"] for r in scored} == {"cell"}
    assert {r["weights"]["segmenter"]["config"].rsplit("/", 1)[1] for r in scored} == {"synthcity_erfnet.py"}
    assert {r["evaluation"]["key"] for r in scored}.isdisjoint(r["evaluation"]["key"] for r in before.values())
    assert all(read_result(p) == r for p, r in before.items())  # the cells' own results untouched
    ours = build_suite("synthcity", SuiteOptions(synthcity=TINY, seg_train=SegTrainSpec(iterations=4, batch=2,
                                                                                          crop=64), evaluator="erfnet"))
    assert ours.locate_segmenter() is not None and "synthcity_erfnet-" in ours.segmenter_weights().stem
    assert main(rescore) == 0
    assert "re-scored 0 cells (6 already were)" in capsys.readouterr().err
    assert main(["report", "--results", str(runs), "--agreement", "--resamples", "200"]) == 0
    text = capsys.readouterr().out
    assert "rank agreement between evaluators" in text and "synthcity_erfnet" in text and "Kendall's τ" in text
    values = values_from_results(load_results(runs, "synthcity"))
    rescored_keys = [k for k in values if k.startswith("scored-") and "@synthcity_erfnet:" in k]
    assert len(rescored_keys) == 6 * 2 * 3  # cells x levels x metrics
    assert main(["report", "--results", str(runs)]) == 0
    assert "| scored |" not in capsys.readouterr().out  # another evaluator's rows belong to --agreement only


def run_grid_quietly(grid, suite, results):
    from bench.runner import run_grid

    return run_grid(grid, suite, results, log=lambda *_: None)


@pytest.mark.parametrize("argv, message", [
    (["score", "--rescore", "--evaluator", "erfnt"], "did you mean 'erfnet'"),
    (["score", "--cell", "x", "--seeds", "1"], "--only and --seeds choose the cells of --rescore"),
    (["score", "--rescore", "--seed", "3"], "--rescore scores each cell at its own seed"),
    (["score", "--rescore", "--name", "x"], "--rescore scores each cell at its own seed"),
    (["score", "--rescore", "--weights", "w.pth"], "--weights goes with --model"),
    (["score", "--rescore", "--precision", "bf16"], "--precision goes with --model"),
    (["score", "--restored", "x", "--precision", "bf16"], "--precision goes with --model"),
    (["prepare", "--evaluator", "erfnet", "--suite", "cityscapes", "--data-root", "/x", "--seg-config", "a.py",
      "--seg-checkpoint", "b"], "the cityscapes suite's evaluator is --seg-config"),
])
def test_evaluator_and_rescore_options_are_checked_in_one_line(tmp_path, argv, message, capsys):
    from bench.cli import main

    assert main(argv + (["--results", str(tmp_path)] if argv[0] == "score" else [])) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_rescore_of_a_grid_with_no_finished_cells_is_one_line(tmp_path, monkeypatch, capsys):
    from bench.cli import main

    _tiny_cli(monkeypatch)
    assert main(["score", "--rescore", "--grid", "smoke", "--results", str(tmp_path)]) == 2
    assert "no finished cell of grid smoke" in capsys.readouterr().err


def test_bad_restored_and_weights_on_the_command_line_are_one_line_and_change_no_result(tmp_path, monkeypatch,
                                                                                      capsys):
    """Every bad --restored folder and --weights file through `bench score` itself: exit 2, one error line, no
    traceback, and the results folder that already holds a scored result is left byte for byte as it was."""
    import collections
    import fractions
    import hashlib
    import shutil

    from bench.cli import main
    from models import build_backbone

    _tiny_cli(monkeypatch)
    grid = tmp_path / "tiny.toml"
    grid.write_text(TINY_GRID)
    results, noisy, good = tmp_path / "runs", tmp_path / "noisy", tmp_path / "good"
    torch.save(build_backbone("ffdnet_small").state_dict(), tmp_path / "w.pth")
    common = ["--grid", str(grid), "--results", str(results)]
    assert main(["score", "--model", "ffdnet_small", "--weights", str(tmp_path / "w.pth"), "--name", "m"] + common) == 0
    assert main(["noisy", "--grid", str(grid), "--out", str(noisy)]) == 0
    for f in noisy.glob("*/*.npy"):  # "restored" by quantising the noisy input: a valid folder
        (good / f.parent.name).mkdir(parents=True, exist_ok=True)
        u8 = (np.load(f).clip(0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
        Image.fromarray(u8).save(good / f.parent.name / f"{f.stem}.png")
    assert main(["score", "--restored", str(good), "--noisy", str(noisy), "--name", "r"] + common) == 0
    capsys.readouterr()

    def snapshot():
        return {p.relative_to(results): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(results.rglob("*")) if p.is_file()}

    before = snapshot()
    first = sorted((good / "25").glob("*.png"))[0]
    cases = {"missing": lambda d: (d / "25" / first.name).unlink(),
             "mis-sized": lambda d: Image.fromarray(np.zeros((8, 9, 3), np.uint8)).save(d / "25" / first.name),
             "undecodable": lambda d: (d / "25" / first.name).write_bytes(b"\x89PNG garbage")}
    # (extra files, other modes and 16-bit PNGs: the same path, their messages in test_bad_restored_folders_are_one_line)
    for what, damage in cases.items():
        bad = tmp_path / what
        shutil.copytree(good, bad)
        damage(bad)
        assert main(["score", "--restored", str(bad), "--noisy", str(noisy), "--name", "r"] + common) == 2, what
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and first.name in errors[0], (what, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, (what, err)  # a log line, the error
    torch.save({"net_g": {"x": torch.zeros(1)}}, tmp_path / "layout.pth")
    torch.save({"c": collections.Counter(), "f": fractions.Fraction(1, 3)}, tmp_path / "pickled.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    for weights, params in ((tmp_path / "none.pth", "{}"), (tmp_path / "layout.pth", "{}"),
                            (tmp_path / "pickled.pth", "{}"), (tmp_path / "garbage.pth", "{}"),
                            (tmp_path / "w.pth", '{"width": 16}')):
        argv = ["score", "--model", "ffdnet_small", "--weights", str(weights), "--model-params", params, "--name", "m"]
        assert main(argv + common) == 2, weights
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(weights) in err and "Traceback" not in err, err
    assert snapshot() == before
