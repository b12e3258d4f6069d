import json

import numpy as np
import pytest
import torch

from bench.base.classes import ID
from bench.base.data import SplitData, list_split
from bench.base.errors import BenchError
from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity, scene_rng
from bench.synthcity.render import render_scene

REQUIRED = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
            "terrain", "sky", "person", "rider", "car", "truck", "bus", "bicycle"]


def test_scenes_are_deterministic_per_seed():
    a = render_scene(64, 128, scene_rng(0, "train", 3))
    b = render_scene(64, 128, scene_rng(0, "train", 3))
    c = render_scene(64, 128, scene_rng(1, "train", 3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_scenes_cover_the_classes_and_have_thin_structures():
    seen = np.zeros(19, np.int64)
    thin = 0
    for i in range(40):
        img, lab = render_scene(128, 256, scene_rng(0, "train", i))
        assert img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
        assert lab.max() < 19
        seen += np.bincount(lab.ravel(), minlength=19)
        pole_cols = (lab == ID["pole"]).sum(0)
        thin += int(((pole_cols > 0) & (pole_cols < 60)).any())
    missing = [c for c in REQUIRED if seen[ID[c]] == 0]
    assert not missing, f"classes never drawn: {missing}"
    assert thin > 20


def test_written_layout_is_read_by_the_loader_and_cached(tmp_path):
    spec = SynthcitySpec(height=64, width=128, n_train=6, n_val=3)
    root = ensure_synthcity(spec, root=tmp_path, workers=1, log=lambda *_: None)
    assert (root / "leftImg8bit" / "train").is_dir() and (root / "gtFine" / "val").is_dir()
    val = SplitData(root, "val")
    assert len(val) == 3 and val.ids()[0] == "valdorf_000000_000019"
    img, lab = val[0]
    assert img.dtype == torch.uint8 and img.shape == (3, 64, 128) and lab.shape == (64, 128)
    expected = render_scene(64, 128, scene_rng(0, "val", 0))
    assert np.array_equal(img.permute(1, 2, 0).numpy(), (expected[0] * 255).round().astype(np.uint8))
    assert np.array_equal(lab.numpy(), expected[1])
    mtime = (root / "manifest.json").stat().st_mtime_ns
    assert ensure_synthcity(spec, root=tmp_path, workers=1, log=lambda *_: None) == root
    assert (root / "manifest.json").stat().st_mtime_ns == mtime  # not regenerated
    meta = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**meta, "generator_version": -1}))
    ensure_synthcity(spec, root=tmp_path, workers=1, log=lambda *_: None)  # stale stamp: regenerated
    assert json.loads((root / "manifest.json").read_text())["generator_version"] == meta["generator_version"]


def test_layout_errors_say_what_to_do(tmp_path):
    with pytest.raises(BenchError, match="does not exist"):
        list_split(tmp_path / "nope", "val")
    (tmp_path / "leftImg8bit" / "val" / "x").mkdir(parents=True)
    with pytest.raises(BenchError, match="labels folder .* is missing"):
        list_split(tmp_path, "val")
    with pytest.raises(BenchError, match="one level too deep"):
        list_split(tmp_path / "leftImg8bit", "val")
    (tmp_path / "gtFine" / "val" / "x").mkdir(parents=True)
    with pytest.raises(BenchError, match="no \\*_leftImg8bit.png"):
        list_split(tmp_path, "val")
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "leftImg8bit/val/x/x_000000_000001_leftImg8bit.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "gtFine/val/x/x_000000_000001_gtFine_labelIds.png")
    with pytest.raises(BenchError, match="labelIds found"):
        list_split(tmp_path, "val")


def test_a_generation_killed_mid_way_leaves_no_lock_held(tmp_path):
    """SIGKILL during synthcity generation (two worker processes): the next run takes the lock, regenerates and
    returns (the forked workers used to inherit the lock and keep it, so the next run hung without a word)."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys; from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity; "
            "ensure_synthcity(SynthcitySpec(height=64, width=128, n_train=400, n_val=8), root=__import__('pathlib')"
            f".Path({str(tmp_path)!r}), workers=2, log=lambda *_: None)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.rglob("*_leftImg8bit.png")):
        time.sleep(0.1)
    assert list(tmp_path.rglob("*_leftImg8bit.png")), "generation did not start"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    small = ("from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity; import pathlib; "
             "print(ensure_synthcity(SynthcitySpec(height=64, width=128, n_train=400, n_val=8), "
             f"root=pathlib.Path({str(tmp_path)!r}), workers=2, log=lambda *_: None))")
    done = subprocess.run([sys.executable, "-c", small], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / done.stdout.strip().split("/")[-1] / "manifest.json").is_file()
