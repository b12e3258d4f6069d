"""One row per bad input: each ends in one `error:` line (or a refusal naming the file), never a traceback or a
silently different result. Inputs are built in a temporary folder; nothing is downloaded."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from bench.base.errors import BenchError

# ---------------------------------------------------------------------------------------------- command line


@pytest.mark.parametrize("args, message", [
    (["run", "--seeds", "-1"], "--seeds: expected an integer >= 0"),
    (["run", "--device", "gpu"], "--device: expected cpu, cuda or cuda:N"),
    (["run", "--device", "cuda:x"], "--device: expected cpu, cuda or cuda:N"),
    (["run", "--shard", "4/4"], "--shard: expected I/N with 0 <= I < N"),
    (["run", "--shard", "two"], "--shard: expected I/N"),
    (["run", "--threads", "0"], "--threads: expected an integer >= 1"),
    (["run", "--threads", "-1"], "--threads: expected an integer >= 1"),
    (["run", "--workers", "-2"], "--workers: expected an integer >= 0"),
    (["run", "--precision", "fp16"], "invalid choice: 'fp16'"),
    (["report", "--resamples", "5"], "--resamples: expected an integer >= 100"),
    (["export"], "the following arguments are required: --out"),
])
def test_bad_options_are_refused_by_argparse_with_the_range(args, message, capsys):
    from bench.cli import main

    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["status", "--grid", "smoek"], "did you mean 'smoke'"),
    (["status", "--suite", "cityscape"], "did you mean 'cityscapes'"),
    (["status", "--set", "objective.nothing=1"], "takes a parameter 'nothing'"),
    (["status", "--set", "train.iteratons=3"], "did you mean 'iterations'"),
    (["status", "--set", "lr"], "expected KEY=VALUE"),
    (["status", "--set", "train.iterations=many"], "expected a int"),
    (["status", "--set", "train.warmup=1.5"], "warmup and ema_decay must be in [0, 1)"),
    (["status", "--grid", "objectives", "--set", "objective.d2sm.queue_size=0"], "queue_size: 0 is not an integer >= 1"),
    (["status", "--grid", "objectives", "--set", "objective.d2sm.queue_size=2.5"], "queue_size: 2.5 is not an integer"),
    (["status", "--grid", "objectives", "--set", "objective.weight=-1"], "weight: -1 is not a number >= 0"),
    (["status", "--grid", "objectives", "--set", "objective.weight=nan"], "weight: nan is not a finite number"),
    (["status", "--grid", "objectives", "--set", "backbone.depth=0"], "depth: 0 is not an integer >= 1"),
    (["status", "--plugin", "missing_module_xyz"], "no module named 'missing_module_xyz'"),
    (["status", "--plugin", "/nonexistent/plugin.py"], "no such file"),
    (["status", "--grid", "/nonexistent/grid.toml"], "does not exist"),
    (["status", "--grid", "nowhere_xyz:GRID"], "cannot import module 'nowhere_xyz'"),
    (["check", "--baseline", "/nonexistent/base.json"], "create it with --update-baseline"),
])
def test_bad_names_and_files_give_one_error_line(args, message, tmp_path, capsys):
    from bench.cli import main

    assert main([*args, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err


SHARED_ROWS = [(args[1:], message) for args, message in [
    (["status", "--grid", "smoek"], "did you mean 'smoke'"),
    (["status", "--suite", "cityscape"], "did you mean 'cityscapes'"),
    (["status", "--set", "objective.nothing=1"], "takes a parameter 'nothing'"),
    (["status", "--set", "train.iteratons=3"], "did you mean 'iterations'"),
    (["status", "--set", "train.warmup=1.5"], "warmup and ema_decay must be in [0, 1)"),
    (["status", "--plugin", "missing_module_xyz"], "no module named 'missing_module_xyz'"),
    (["status", "--plugin", "/nonexistent/plugin.py"], "no such file"),
    (["status", "--grid", "/nonexistent/grid.toml"], "does not exist"),
    (["status", "--grid", "nowhere_xyz:GRID"], "cannot import module 'nowhere_xyz'"),
]]


@pytest.mark.parametrize("args, message", SHARED_ROWS)
def test_doctor_and_run_refuse_the_same_names_and_files(args, message, tmp_path, capsys):
    """The rows that both commands take: the same one line from each, before any work."""
    from bench.cli import main

    args = args if "--grid" in args else [*args, "--grid", "smoke"]  # the two commands' default grids differ
    assert main(["doctor", *args]) == 2
    doctor_err = capsys.readouterr().err.strip()
    assert main(["run", *args, "--results", str(tmp_path)]) == 2
    run_err = capsys.readouterr().err.strip()
    assert message in doctor_err and doctor_err == run_err, (doctor_err, run_err)
    assert not (tmp_path / "synthcity").exists()


def test_missing_cuda_is_said_where_the_cells_run(tmp_path, capsys):
    from bench.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["run", "--device", "cuda", "--precision", "fp32", "--results", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- data files

def _split(root, split="val", n=2, h=16, w=32):
    """A Cityscapes-layout split of ``n`` valid pairs; returns their (image, label) paths."""
    out = []
    for i in range(n):
        img = root / "leftImg8bit" / split / "city" / f"city_{i:06d}_000019_leftImg8bit.png"
        lab = root / "gtFine" / split / "city" / f"city_{i:06d}_000019_gtFine_labelTrainIds.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        lab.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(img)
        Image.fromarray(np.full((h, w), 7, np.uint8)).save(lab)
        out.append((img, lab))
    return out


def _truncate(path):
    path.write_bytes(path.read_bytes()[:40])


def _text(path):
    path.write_text("not an image")


def _rgb_label(path):
    Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(path)


def _out_of_range(path):
    arr = np.full((16, 32), 7, np.uint8)
    arr[3, 3] = 26
    Image.fromarray(arr).save(path)


def _wrong_size(path):
    Image.fromarray(np.full((8, 32), 7, np.uint8)).save(path)


def _sixteen_bit(path):
    Image.fromarray(np.full((16, 32), 40000, np.uint16)).save(path)  # mode I;16: convert("RGB") would clip it


def _jpeg(path):
    Image.fromarray(np.zeros((16, 32, 3), np.uint8)).save(path, format="JPEG")


def _one_pixel(path):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path)


def _bomb(path):
    """A PNG whose header declares 30000 x 30000 pixels (its CRC right): PIL refuses to decode it."""
    import struct
    import zlib

    data = bytearray(path.read_bytes())
    i = data.index(b"IHDR")
    data[i + 4:i + 12] = struct.pack(">II", 30000, 30000)
    data[i + 17:i + 21] = struct.pack(">I", zlib.crc32(bytes(data[i:i + 17])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which, damage, message", [
    ("image", _sixteen_bit, "has mode I;16 (16-bit: converting would clip it"),
    ("image", _jpeg, "is a JPEG file named .png"),
    ("label", _jpeg, "is a JPEG file named .png"),
    ("image", _one_pixel, "is 1x1 pixels; images need at least 11 a side"),
    ("image", _bomb, "declares more pixels than PIL decodes safely"),
    ("image", _truncate, "cannot be decoded"),
    ("image", _text, "cannot be decoded"),
    ("label", _truncate, "cannot be decoded"),
    ("label", _rgb_label, "has mode RGB"),
    ("label", _out_of_range, "holds values [26] outside the 19 train ids"),  # in the second file, not the first
    ("label", _wrong_size, "sizes differ"),
])
def test_every_file_of_a_split_is_checked_when_read(tmp_path, which, damage, message):
    from bench.base.data import SplitData

    pairs = _split(tmp_path)
    img, lab = pairs[1]  # the second pair: checking only the first file would miss it
    damage(img if which == "image" else lab)
    data = SplitData(tmp_path, "val")
    data[0]
    with pytest.raises(BenchError, match="sizes differ" if message == "sizes differ" else None) as e:
        data[1]
    assert message in str(e.value) and ("city_000001" in str(e.value))
    from bench.base.data import check_split

    with pytest.raises(BenchError) as e:  # what doctor runs: the same refusal
        check_split(tmp_path, "val")
    assert message in str(e.value) or message == "cannot be decoded" and "cannot be decoded" in str(e.value)


def test_a_dangling_symlink_and_an_image_outside_a_city_folder_are_named(tmp_path):
    from bench.base.data import list_split

    (img, _), _ = _split(tmp_path)
    stray = img.parent.parent / img.name
    img.rename(stray)
    with pytest.raises(BenchError, match="not in a city folder"):
        list_split(tmp_path, "val")
    stray.rename(img)
    img.unlink()
    img.symlink_to(tmp_path / "gone.png")
    with pytest.raises(BenchError, match="is a symbolic link to .*gone.png, which does not exist"):
        list_split(tmp_path, "val")


# ---------------------------------------------------------------------------------------------- checkpoints

def _real_checkpoint(path):
    torch.save({"state_dict": {"w": torch.zeros(3)}}, path)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/d2sm-bench-pwned",))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("hello"), "corrupt or not a PyTorch checkpoint"),
    (lambda p: p.write_bytes(b""), "corrupt or not a PyTorch checkpoint"),
    (lambda p: (_real_checkpoint(p), p.write_bytes(p.read_bytes()[:60])), "corrupt or not a PyTorch checkpoint"),
    (lambda p: torch.save([1, 2, 3], p), "holds a list, not a state dict"),
    (lambda p: p.write_bytes(pickle.dumps(_Payload())), "corrupt or not a PyTorch checkpoint"),  # refused opcode
    (lambda p: torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Payload()}, p), "outside the allow-list"),
])
def test_malformed_segmenter_checkpoints_name_the_file(tmp_path, make, message):
    from seg_eval.checkpoint import load_checkpoint_file

    path = tmp_path / "seg.pth"
    make(path)
    with pytest.raises(BenchError) as e:
        load_checkpoint_file(path)
    assert message in str(e.value) and str(path) in str(e.value)
    assert not os.path.exists("/tmp/d2sm-bench-pwned")


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("optimizer"), "corrupt or incompatible"),
    (lambda c: c["model"].update(extra=torch.zeros(1)), "corrupt or incompatible"),
    (lambda c: c.update(format="other"), "corrupt or incompatible"),
])
def test_malformed_training_checkpoints_name_the_file(tmp_path, change, message):
    from bench.config import TrainConfig
    from bench.train import load_checkpoint, make_state, train
    from losses import build_objective
    from models import build_backbone

    cfg = TrainConfig(iterations=2, batch=2, crop=16, checkpoint_every=2)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    path = tmp_path / "train.pth"
    train(build_backbone("ffdnet_small", width=8, depth=3), build_objective("l1"), images, cfg, 0, path,
          torch.device("cpu"), log=lambda *_: None)
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)
    model = build_backbone("ffdnet_small", width=8, depth=3)
    state = make_state(model, cfg)
    with pytest.raises(BenchError) as e:
        load_checkpoint(state, path)
    assert message in str(e.value) and str(path) in str(e.value)


# ---------------------------------------------------------------------------------------------- results, baselines

@pytest.mark.parametrize("content, message", [
    ("{not json", "unreadable or corrupt"),
    ("[]", "not a JSON object"),
    (json.dumps({"schema": 7, "kind": "cell"}), "schema 7"),
])
def test_corrupt_results_name_the_file(tmp_path, content, message):
    from bench.results import read_result

    path = tmp_path / "result.json"
    path.write_text(content)
    with pytest.raises(BenchError) as e:
        read_result(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_a_baseline_without_values_is_refused(tmp_path):
    from bench.check import read_baseline

    path = tmp_path / "b.json"
    path.write_text(json.dumps({"tolerances": {}}))
    with pytest.raises(BenchError, match="no .values. table"):
        read_baseline(path)


def test_zip_bomb_free_checkpoint_with_a_bad_member_is_corrupt(tmp_path):
    from seg_eval.checkpoint import load_checkpoint_file

    path = tmp_path / "c.pth"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"garbage")
    path.write_bytes(buf.getvalue())
    with pytest.raises(BenchError, match="corrupt or not a PyTorch checkpoint"):
        load_checkpoint_file(path)


# ---------------------------------------------------------------------------------------------- the synthcity cache

CACHE_DAMAGE = [  # (what is done to the second val label of a synthcity cache, what the refusal says)
    (lambda f: f.write_bytes(f.read_bytes()[:-1] + bytes([f.read_bytes()[-1] ^ 1])), "differs from its manifest"),
    (lambda f: f.unlink(), "is missing"),
    (lambda f: f.with_name("extra_gtFine_labelTrainIds.png").write_bytes(f.read_bytes()), "is not in its manifest"),
]


@pytest.mark.parametrize("damage, message", CACHE_DAMAGE)
def test_a_modified_synthcity_cache_is_refused_naming_the_file(tmp_path, damage, message):
    from bench.synthcity import dataset
    from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity

    spec = SynthcitySpec(height=32, width=64, n_train=4, n_val=2)
    out = ensure_synthcity(spec, root=tmp_path, workers=1, log=lambda *_: None)
    label = sorted(out.glob("gtFine/val/*/*_labelTrainIds.png"))[1]
    damage(label)
    dataset._verified.discard(out)  # a new process
    with pytest.raises(BenchError) as e:
        ensure_synthcity(spec, root=tmp_path, workers=1, log=lambda *_: None)
    assert message in str(e.value) and "delete" in str(e.value)


@pytest.mark.parametrize("damage, message", CACHE_DAMAGE)
def test_doctor_and_run_agree_on_a_damaged_synthcity_cache(tmp_path, damage, message):
    """doctor reports the damaged file that run refuses to start on, with the same message."""
    from bench.doctor import diagnose
    from bench.grids import get_grid
    from bench.runner import run_grid
    from bench.suites import SuiteOptions, build_suite
    from bench.synthcity import dataset
    from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity

    spec = SynthcitySpec(height=32, width=64, n_train=4, n_val=2)
    out = ensure_synthcity(spec, root=tmp_path / "data", workers=1, log=lambda *_: None)
    opts = SuiteOptions(data_root=tmp_path / "data", synthcity=spec)
    grid = get_grid("smoke")
    dataset._verified.discard(out)
    lines, ok = diagnose("synthcity", opts, grid)
    assert ok, lines
    damage(sorted(out.glob("gtFine/val/*/*_labelTrainIds.png"))[1])
    dataset._verified.discard(out)
    lines, ok = diagnose("synthcity", opts, grid)
    reported = next(line for line in lines if line.lstrip().startswith("MISSING  data"))
    assert not ok and message in reported
    dataset._verified.discard(out)
    with pytest.raises(BenchError) as e:
        run_grid(grid, build_suite("synthcity", opts), tmp_path / "runs", log=lambda *_: None)
    assert str(e.value) in reported
    assert not list((tmp_path / "runs").glob("*/*/result.json"))


def test_an_offline_download_says_so(tmp_path, monkeypatch):
    import urllib.error

    from seg_eval.resolve import resolve_checkpoint

    def offline(url, dst, progress=True):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(BenchError, match="cannot download https://example.org/w.pth .*offline or unreachable"):
        resolve_checkpoint("https://example.org/w.pth", None, allow_download=True, log=lambda *_: None)


def test_a_truncated_weights_manifest_names_the_file(tmp_path):
    from bench.embedded_weights import EmbeddedWeights

    w = EmbeddedWeights("w", tmp_path, tmp_path / "shipped", "embedded segmenter", "python -m bench prepare --force")
    w.checkpoint.write_bytes(b"x")
    w.manifest.write_text('{"sha256": "ab')
    with pytest.raises(BenchError, match=r"manifest .*w\.json is unreadable"):
        w.locate()


def test_an_unwritable_cache_says_where_to_point_it(tmp_path, monkeypatch):
    from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity

    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(BenchError, match="set D2SM_BENCH_CACHE to a writable folder"):
        ensure_synthcity(SynthcitySpec(height=32, width=64, n_train=2, n_val=2), root=blocker / "synthcity",
                         workers=1, log=lambda *_: None)


def test_a_crop_larger_than_the_images_is_refused_not_capped(tmp_path):
    from bench.config import TrainConfig
    from bench.train import train
    from losses import build_objective
    from models import build_backbone

    images = torch.randint(0, 256, (2, 3, 24, 40), dtype=torch.uint8)
    with pytest.raises(BenchError, match="training crop 32 is larger than the train images"):
        train(build_backbone("ffdnet_small", width=8, depth=3), build_objective("l1"), images,
              TrainConfig(iterations=1, batch=1, crop=32), 0, tmp_path / "t.pth", torch.device("cpu"),
              log=lambda *_: None)


_GRID = ('name = "b"\ndescription = "d"\nbackbones = ["ffdnet_tiny"]\nobjectives = ["l1"]\n'
         '[train.synthcity]\niterations = 20\nprecision = "fp32"\n')


@pytest.mark.parametrize("head,tail,message", [
    ("", '[objective_params.l11]\nweight = 2', "unknown objective of this grid's rows in [objective_params]"),
    ("", '[backbone_params.ffdnet_tyni]\ndepth = 3', "did you mean 'ffdnet_tiny'?"),
    ("", '[[cells]]\nbackbone = "ffdnet_tiny"\nobjective = "l1"\nseed = 3', "unknown key in [[cells]]"),
    ("", '[[products]]\nbackbones = ["ffdnet_tiny"]\nobjectives = ["ssim"]\ntrain = {iterations = 3}',
     "unknown key in [[products]]"),
    ("", '[[cells]]\nbackbone = "ffdnet_tiny"\nobjective = "l1"\nobjective_param = {weight = 2}',
     "did you mean 'objective_params'"),
    ("test_sigmas = []\n", "", "test_sigmas must be a non-empty list"),
    ("test_sigmas = [-5]\n", "", "-5 is not a noise level in (0, 255]"),
    ('test_sigmas = ["a"]\n', "", "'a' is not a noise level"),
    ("seeds = [-1]\n", "", "-1 is not a non-negative integer seed"),
    ("seeds = [0.5]\n", "", "0.5 is not a non-negative integer seed"),
    ('seeds = "abc"\n', "", "seeds must be a non-empty list"),
    ("seeds = [1, 1]\n", "", "seeds repeat"),
    ("products = 5\n", "", "products must be an array of tables"),
    ("", "[train]\niterations = 0", "iterations must be an integer >= 1, not 0"),
    ("", "[train]\nlr = -1e-3", "lr must be a finite number > 0"),
    ("", "[train]\nsigma_max = 300", "sigma_max must be in (0, 255]"),
    ("", "[train]\nbatch = 0", "batch must be an integer >= 1"),
])
def test_grid_files_refuse_what_they_would_ignore_or_misread(tmp_path, capsys, head, tail, message):
    """Each input that used to be dropped, clipped or crash deep in torch: exit 2, one `error:` line naming the file
    and the key, nothing written under the results folder."""
    from bench.cli import main

    grid = tmp_path / "g.toml"
    grid.write_text(head + _GRID + tail + "\n")
    results = tmp_path / "r"
    assert main(["run", "--grid", str(grid), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not results.exists() or not any(results.rglob("*.json"))


# ------------------------------------------------------------- results, run specs and report folders (issue 25)

FIXTURE = __import__("pathlib").Path(__file__).parent / "fixtures" / "results"


def _result_folder(tmp_path, change=None):
    """A copy of the committed real result, ``change(data)`` applied to its result.json."""
    import shutil

    root = tmp_path / "res"
    shutil.copytree(FIXTURE, root)
    path = next(root.glob("synthcity/*/result.json"))
    if change:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return root


def _set(path, value):
    def change(data):
        *head, last = path.split(".")
        d = data
        for k in head:
            d = d[k]
        d[last] = value(d[last]) if callable(value) else value
    return change


@pytest.mark.parametrize("change, message", [
    (_set("config", {}), "field 'config.backbone' is missing"),
    (_set("metrics", {}), "field 'metrics' is empty"),
    (_set("metrics.25.psnr", float("nan")), "field 'metrics.25.psnr' is nan, outside [0.0, inf]"),
    (_set("metrics.25.miou", 2.5), "field 'metrics.25.miou' is 2.5, outside [0.0, 1.0]"),
    (_set("metrics.25.ssim", -3), "field 'metrics.25.ssim' is -3"),
    (_set("metrics.25.per_image.psnr", lambda v: v[:5]), "per_image.psnr' has 5 entries for 96 image ids"),
])
@pytest.mark.parametrize("command", [["report"], ["report", "--claims"], ["export", "--out", "OUT"]])
def test_a_result_that_cannot_be_ranked_is_named_not_ranked(tmp_path, capsys, change, message, command):
    from bench.cli import main

    root = _result_folder(tmp_path, change)
    before = sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*"))
    args = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    assert main([*args, "--results", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "result.json" in err and len(err.splitlines()) == 1, err
    assert sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*")) == before


@pytest.mark.parametrize("args, message", [
    (["report"], "does not exist: nothing has run there"),
    (["report", "--claims"], "does not exist: nothing has run there"),
    (["export", "--out", "OUT"], "does not exist: nothing has run there"),
    (["check", "--baseline", "results/baselines/smoke.json"], "does not exist: nothing has run there"),
    (["report", "--seeds", "0", "1"], "--seeds selects a grid's cells: add --grid NAME"),
    (["status", "--set", "seeds=abc"], "--set seeds=abc: 'abc' is not a non-negative integer seed"),
    (["status", "--set", 'seeds=["a"]'], "is not a non-negative integer seed"),
    (["status", "--set", "seeds=[-1]"], "-1 is not a non-negative integer seed"),
    (["status", "--set", 'test_sigmas=["a"]'], "is not a noise level in (0, 255]"),
    (["status", "--set", "test_sigmas=[0]"], "is not a noise level in (0, 255]"),
    (["report", "--grid", "smoke", "--seeds", "auto", "1"], "'auto' stands alone"),
    (["report", "--grid", "smoke", "--max-seeds", "5"], "--max-seeds applies to --seeds auto only"),
    (["run", "--grid", "smoke", "--seeds", "auto", "--shard", "0/2"], "drop --shard"),
    (["run", "--grid", "smoke", "--seeds", "auto", "--rerun"], "drop --rerun"),
    (["run", "--grid", "smoke", "--seeds", "auto", "--launcher", "submitit"], "needs --wait"),
    (["report", "--grid", "smoke", "--claims", "--format", "latex"], "the claims table is markdown or csv"),
    (["check", "--baseline", "results/baselines/smoke.json", "--tolerance", "psnr=abc"], "--tolerance 'psnr=abc'"),
])
def test_report_status_export_check_refuse_what_they_would_misread(tmp_path, capsys, args, message):
    from bench.cli import main

    if args[0] == "report" and "--claims" in args and "--format" in args:
        (tmp_path / "synthcity").mkdir()
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    assert main([*args, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_export_into_a_file_and_a_run_spec_that_is_not_one_are_refused(tmp_path, capsys):
    from bench.cli import main

    root = _result_folder(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert main(["export", "--results", str(root), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file: give a folder" in capsys.readouterr().err
    for content, message in (("[]", "is a JSON list"), ('{"version": 1}', "is not one `bench run` wrote"),
                             ("{", "is unreadable")):
        (tmp_path / "spec.json").write_text(content)
        assert main(["exec", str(tmp_path / "spec.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_report_over_a_folder_with_a_short_trial_beside_the_grids_cell_names_both(tmp_path, capsys):
    import shutil

    from bench.cli import main

    root = _result_folder(tmp_path)
    src = next(root.glob("synthcity/*/result.json"))
    data = json.loads(src.read_text())
    data["cell_id"] = "0123456789ab"  # the same row and seed, another configuration (say train.iterations=200)
    twin = src.parent.parent / f"{data['slug']}-{data['cell_id']}"
    shutil.copytree(src.parent, twin)
    (twin / "result.json").write_text(json.dumps(data))
    assert main(["report", "--results", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "two cells are row ffdnet_small x l1 at seed 0 with other settings" in err and twin.name in err, err


def test_a_terminal_that_cannot_print_unicode_gets_the_report_not_a_traceback(tmp_path):
    import subprocess
    import sys

    root = _result_folder(tmp_path)
    done = subprocess.run([sys.executable, "-m", "bench", "report", "--results", str(root)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0 and "Traceback" not in done.stderr and "| ffdnet_small | l1 |" in done.stdout


def test_a_damaged_precision_cache_is_measured_again(tmp_path, monkeypatch):
    from bench import precision

    monkeypatch.setattr(precision, "measure_cpu", lambda: {"ratio": 2.0})
    path = tmp_path / "precision" / f"cpu-{precision.machine_key()}.json"
    path.parent.mkdir(parents=True)
    for content in ('{"precision": "fp16"}', "{trunc", "[]"):
        path.write_text(content)
        assert precision.auto_precision("cpu", tmp_path) == "fp32"
        assert json.loads(path.read_text())["precision"] == "fp32"


def test_a_truncated_decoded_cache_manifest_is_refused_with_the_way_back(tmp_path):
    from bench.base.data import list_split
    from bench.streaming import decoded_split

    _split(tmp_path / "data", split="train", n=2)
    samples = list_split(tmp_path / "data", "train")
    decoded_split(samples, tmp_path / "cache", log=lambda *_: None)
    manifest = next((tmp_path / "cache").glob("*/manifest.json"))
    manifest.write_text(manifest.read_text()[:20])
    with pytest.raises(BenchError, match=r"manifest .* is unreadable .*delete the folder"):
        decoded_split(samples, tmp_path / "cache", log=lambda *_: None)


def test_a_baseline_with_a_misspelt_key_is_refused_with_the_close_match(tmp_path):
    from bench.check import read_baseline

    repo = FIXTURE.parents[2]
    base = json.loads((repo / "results" / "baselines" / "smoke.json").read_text())
    base["tolerance"] = base.pop("tolerances")
    (tmp_path / "b.json").write_text(json.dumps(base))
    with pytest.raises(BenchError, match="unknown key 'tolerance' \\(did you mean 'tolerances'\\?\\)"):
        read_baseline(tmp_path / "b.json")
    from bench.grids import get_grid

    get_grid(str(repo / "examples" / "grid.toml"))  # its plugins register the metric its baseline holds
    assert read_baseline(repo / "examples" / "baseline.json")["values"]
