"""The cityscapes suite end to end on a fixture in the exact Cityscapes layout, with a real mmseg Cityscapes
config (Fast-SCNN) and random weights saved as a checkpoint: labels, layout, loading, inference, mIoU."""
import numpy as np
import pytest
import torch
from PIL import Image

from bench.base.errors import BenchError

# Real label ids, ignored ones included: unlabeled 0, ego vehicle 1, static 4, ground 6, parking 9, rail track 10,
# guard rail 14, road 7, sidewalk 8, building 11, vegetation 21, sky 23, car 26, bicycle 33.
IDS = np.array([0, 1, 4, 6, 7, 8, 9, 10, 11, 14, 21, 23, 26, 33], np.uint8)
CITIES = {"train": ("aachen", "bochum"), "val": ("frankfurt",)}
CONFIG = "fast_scnn_8xb4-160k_cityscapes-512x1024"


def _fixture(root, n_per_city=2, h=64, w=128):
    rng = np.random.default_rng(0)
    for split, cities in CITIES.items():
        for city in cities:
            for i in range(n_per_city):
                stem = f"{city}_{i:06d}_000019"
                img_dir, gt_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
                img_dir.mkdir(parents=True, exist_ok=True)
                gt_dir.mkdir(parents=True, exist_ok=True)
                ids = IDS[rng.integers(0, len(IDS), (h // 8, w // 8))].repeat(8, 0).repeat(8, 1)
                Image.fromarray(ids).save(gt_dir / f"{stem}_gtFine_labelIds.png")
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(np.zeros((h, w), np.uint8)).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
    return root


@pytest.fixture
def cityscapes(tmp_path):
    return _fixture(tmp_path / "cityscapes")


def test_train_ids_come_from_cityscapesscripts_table(cityscapes):
    from cityscapesscripts.helpers.labels import id2label

    from bench.cityscapes import make_train_ids

    assert make_train_ids(cityscapes, log=lambda *_: None) == 6
    assert make_train_ids(cityscapes, log=lambda *_: None) == 0  # existing files are kept
    src = next(cityscapes.glob("gtFine/val/frankfurt/*_labelIds.png"))
    ids = np.asarray(Image.open(src))
    train = np.asarray(Image.open(str(src).replace("_labelIds", "_labelTrainIds")))
    expected = np.vectorize(lambda i: 255 if id2label[int(i)].trainId in (-1, 255) else id2label[int(i)].trainId)(ids)
    assert np.array_equal(train, expected) and {0, 255, 13} <= set(np.unique(train).tolist())


def test_layout_errors_are_clear(cityscapes):
    from bench.cityscapes import make_train_ids, validate

    with pytest.raises(BenchError, match="cityscapes-labels --data-root"):
        validate(cityscapes, lambda *_: None)  # labelIds only
    make_train_ids(cityscapes, log=lambda *_: None)
    with pytest.raises(BenchError, match="one level too deep"):
        validate(cityscapes / "leftImg8bit", lambda *_: None)
    warnings = []
    assert validate(cityscapes, warnings.append) == {"train": 4, "val": 2}
    assert any("not Cityscapes' 2975" in w for w in warnings)
    bad = next(cityscapes.glob("gtFine/train/aachen/*_labelIds.png"))
    Image.fromarray(np.full((64, 128), 77, np.uint8)).save(bad)
    with pytest.raises(BenchError, match="not Cityscapes label ids"):
        make_train_ids(cityscapes, force=True, log=lambda *_: None)


def _random_checkpoint(path, classes=None):
    from seg_eval import mmcv_compat  # noqa: F401  (before mmseg: registers mmcv.ops on mmcv-lite)
    from seg_eval.resolve import resolve_config

    from mmengine import Config
    from mmseg.apis import init_model

    torch.manual_seed(0)
    model = init_model(Config.fromfile(str(resolve_config(CONFIG))), None, device="cpu")
    meta = {"dataset_meta": {"classes": classes}} if classes else {}
    torch.save({"meta": meta, "state_dict": model.state_dict()}, path)
    return path


def test_whole_path_runs_on_the_fixture_with_a_real_cityscapes_config(cityscapes, tmp_path):
    from bench.base.classes import CLASSES
    from bench.cityscapes import make_train_ids
    from bench.config import TrainConfig
    from bench.grids import Grid, product
    from bench.results import load_results
    from bench.runner import run_grid
    from bench.suites import SuiteOptions, build_suite

    make_train_ids(cityscapes, log=lambda *_: None)
    ckpt = _random_checkpoint(tmp_path / "fast_scnn_random.pth", classes=list(CLASSES))
    suite = build_suite("cityscapes", SuiteOptions(cityscapes, CONFIG, str(ckpt)))
    grid = Grid("fixture", "test", product(("ffdnet_small",), ("l1",)), test_sigmas=(25.0,),
                train={"cityscapes": TrainConfig(iterations=4, batch=2, crop=32, lr=1e-3, checkpoint_every=2)})
    assert run_grid(grid, suite, tmp_path / "results", log=lambda *_: None) == (0, 1, 0)
    (cell,) = [r for r in load_results(tmp_path / "results", "cityscapes") if r["kind"] == "cell"]
    m = cell["metrics"]["25"]
    assert 0 <= m["miou"] <= 1 and len(m["per_image"]["ids"]) == 2 and m["per_image"]["ids"][0].startswith("frankfurt_")
    assert cell["weights"]["segmenter"]["config"].endswith(f"{CONFIG}.py")
    assert sum(m["areas"]["label"]) > 0  # labelled pixels reached the metric (ignored ids did not)


def test_checkpoint_for_other_classes_is_refused_before_training(cityscapes, tmp_path):
    from seg_eval.segmenter import Segmenter

    ckpt = _random_checkpoint(tmp_path / "ade.pth", classes=[f"class{i}" for i in range(19)])
    from seg_eval.resolve import resolve_config

    with pytest.raises(BenchError, match="not the 19 Cityscapes train classes"):
        Segmenter(resolve_config(CONFIG), ckpt)
    sd = torch.load(_random_checkpoint(tmp_path / "x.pth"), weights_only=True)
    key = next(k for k in sd["state_dict"] if k.endswith("conv_seg.weight"))
    sd["state_dict"][key] = sd["state_dict"][key][:150].repeat(8, 1, 1, 1)[:150]
    torch.save(sd, tmp_path / "x150.pth")
    with pytest.raises(BenchError, match="another number of classes"):
        Segmenter(resolve_config(CONFIG), tmp_path / "x150.pth")


def test_config_names_and_urls_resolve_without_silent_downloads(tmp_path, monkeypatch):
    from seg_eval.resolve import resolve_checkpoint, resolve_config

    assert resolve_config(CONFIG).name == f"{CONFIG}.py"
    with pytest.raises(BenchError, match="did you mean 'fast_scnn_8xb4-160k_cityscapes-512x1024'"):
        resolve_config("fast_scnn_8xb4-160k_cityscape-512x1024")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BenchError, match="--allow-download"):
        resolve_checkpoint("zoo", resolve_config(CONFIG))
    # a URL already in the hub cache is used without any download
    cached = tmp_path / "hub" / "checkpoints" / "w.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve_checkpoint("https://example.org/models/w.pth") == cached


def test_a_config_that_needs_compiled_ops_fails_before_training():
    from seg_eval import mmcv_compat
    from seg_eval.resolve import resolve_config
    from seg_eval.segmenter import Segmenter

    if not mmcv_compat.LITE:
        pytest.skip("the compiled mmcv is installed")
    seg = Segmenter(resolve_config("psanet_r50-d8_4xb2-40k_cityscapes-512x1024"), None)
    with pytest.raises(BenchError, match="segformer"):
        seg.probe()


def test_doctor_reports_what_the_cityscapes_suite_lacks(cityscapes, tmp_path, monkeypatch):
    from bench.cityscapes import make_train_ids
    from bench.doctor import diagnose
    from bench.suites import SuiteOptions

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    make_train_ids(cityscapes, log=lambda *_: None)
    ckpt = _random_checkpoint(tmp_path / "fs.pth")
    lines, ok = diagnose("cityscapes", SuiteOptions(cityscapes, CONFIG, str(ckpt)), "paper-table1")
    text = "\n".join(lines)
    assert not ok and "ok       data:" in text and "ok       segmenter checkpoint:" in text
    assert "MISSING  ImageNet VGG19" in text and "IMAGENET1K_V1" in text


def _out_of_range_second_val_label(root, tmp_path):
    labels = sorted(root.glob("gtFine/val/*/*_labelTrainIds.png"))
    arr = np.asarray(Image.open(labels[1])).copy()
    arr[0, 0] = 26
    Image.fromarray(arr).save(labels[1])
    return "outside the 19 train ids"


def _text_checkpoint(root, tmp_path):
    (tmp_path / "fs.pth").write_text("not a checkpoint")
    return "corrupt or not a PyTorch checkpoint"


def _label_size(root, tmp_path):
    labels = sorted(root.glob("gtFine/train/*/*_labelTrainIds.png"))
    Image.fromarray(np.zeros((32, 128), np.uint8)).save(labels[-1])
    return "sizes differ"


def _truncated_second_val_image(root, tmp_path):
    images = sorted(root.glob("leftImg8bit/val/*/*_leftImg8bit.png"))
    images[1].write_bytes(images[1].read_bytes()[:-200])
    return "cannot be decoded"


def _rgb_label(root, tmp_path):
    labels = sorted(root.glob("gtFine/val/*/*_labelTrainIds.png"))
    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(labels[0])
    return "has mode RGB"


def _checkpoint_of_other_classes(root, tmp_path):
    _random_checkpoint(tmp_path / "fs.pth", classes=[f"class{i}" for i in range(19)])
    return "classes"


@pytest.mark.parametrize("damage", [_out_of_range_second_val_label, _text_checkpoint, _label_size,
                                    _truncated_second_val_image, _rgb_label, _checkpoint_of_other_classes])
def test_doctor_and_run_agree_on_bad_inputs(cityscapes, tmp_path, damage):
    """What doctor passes, run accepts; what run refuses, doctor reports (same checks, same message)."""
    from bench.cityscapes import make_train_ids
    from bench.config import TrainConfig
    from bench.doctor import diagnose
    from bench.grids import Grid, product
    from bench.runner import run_grid
    from bench.suites import SuiteOptions, build_suite

    make_train_ids(cityscapes, log=lambda *_: None)
    ckpt = _random_checkpoint(tmp_path / "fs.pth")
    message = damage(cityscapes, tmp_path)
    opts = SuiteOptions(cityscapes, CONFIG, str(ckpt))
    grid = Grid("g", "test", product(("ffdnet_small",), ("l1",)), test_sigmas=(25.0,),
                train={"cityscapes": TrainConfig(iterations=2, batch=2, crop=32, checkpoint_every=2)})
    lines, ok = diagnose("cityscapes", opts, grid)
    assert not ok and message in "\n".join(lines)
    with pytest.raises(BenchError, match=message):
        run_grid(grid, build_suite("cityscapes", opts), tmp_path / "runs", log=lambda *_: None)


def test_a_read_only_dataset_gets_its_train_ids_elsewhere(cityscapes, tmp_path, monkeypatch):
    """cityscapes-labels --out DIR writes the train ids outside the dataset; --label-root DIR reads them there;
    a dataset that refuses the write says so (simulated: permissions do not bind root, which CI may be)."""
    import bench.cityscapes as cs
    from bench.base.data import SplitData

    original = cs.atomic_write_bytes

    def read_only(path, data):
        if str(path).startswith(str(cityscapes)):
            raise PermissionError(13, "Permission denied", str(path))
        original(path, data)

    monkeypatch.setattr(cs, "atomic_write_bytes", read_only)
    with pytest.raises(BenchError, match="Permission denied.*--out DIR"):
        cs.make_train_ids(cityscapes, log=lambda *_: None)
    out = tmp_path / "train_ids"
    assert cs.make_train_ids(cityscapes, log=lambda *_: None, out=out) == 6
    assert not list(cityscapes.glob("gtFine/*/*/*_labelTrainIds.png"))  # nothing written into the dataset
    assert cs.validate(cityscapes, lambda *_: None, label_root=out) == {"train": 4, "val": 2}
    image, label = SplitData(cityscapes, "val", label_root=out)[0]
    assert image.shape[1:] == label.shape
