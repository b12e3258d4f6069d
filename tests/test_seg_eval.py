"""seg_eval: mmseg on mmcv-lite, safe checkpoint loading, mIoU against an independent computation."""
import hashlib
import json

import numpy as np
import pytest
import torch

from bench.base.errors import BenchError
from bench.suites import EMBEDDED_SEG_CONFIG


def test_mmseg_models_import_and_compiled_ops_fail_clearly():
    from seg_eval import mmcv_compat

    import mmseg.models  # noqa: F401  (fails on mmcv-lite without the compat module)

    if not mmcv_compat.LITE:
        pytest.skip("the compiled mmcv is installed")
    from mmcv.ops import psa_mask  # a compiled op: importable, fails only when called

    with pytest.raises(mmcv_compat.CompiledOpUnavailable, match="segformer"):
        psa_mask.PSAMask("collect", (3, 3))(torch.zeros(1, 9, 4, 4))


def _miou_by_confusion_matrix(preds, labels, n=19, ignore=255):
    cm = np.zeros((n, n), np.int64)
    for p, lab in zip(preds, labels, strict=True):
        keep = lab != ignore
        cm += np.bincount(n * lab[keep].astype(np.int64) + p[keep], minlength=n * n).reshape(n, n)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.nanmean(iou), iou


def test_iou_accumulator_matches_a_confusion_matrix():
    from seg_eval.miou import IoUAccumulator

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 12, (3, 20, 30))
    labels[:, :3] = 255
    preds = np.where(rng.random(labels.shape) < 0.7, labels % 19, rng.integers(0, 19, labels.shape))
    preds[preds == 255] = 0
    acc = IoUAccumulator(19)
    acc.update(torch.from_numpy(preds[:2]), torch.from_numpy(labels[:2]))
    acc.update(torch.from_numpy(preds[2]), torch.from_numpy(labels[2]))
    miou, iou = _miou_by_confusion_matrix(preds, labels)
    assert acc.miou() == pytest.approx(miou, abs=1e-9)
    np.testing.assert_allclose(acc.per_class_iou(), iou, atol=1e-9)
    perfect = IoUAccumulator(19)
    perfect.update(torch.from_numpy(labels % 255), torch.from_numpy(labels))
    assert perfect.miou() == 1.0


def _save_random_checkpoint(path, extra_meta=None):
    from seg_eval.segmenter import Segmenter

    torch.manual_seed(0)
    seg = Segmenter(EMBEDDED_SEG_CONFIG, None)
    from bench.base.classes import CLASSES

    torch.save({"meta": {"dataset_meta": {"classes": list(CLASSES)}, **(extra_meta or {})},
                "state_dict": seg.model.state_dict()}, path)
    return seg


def test_segmenter_round_trip_and_batch_independence(tmp_path):
    from seg_eval.segmenter import Segmenter

    ref = _save_random_checkpoint(tmp_path / "w.pth")
    seg = Segmenter(EMBEDDED_SEG_CONFIG, tmp_path / "w.pth")
    for a, b in zip(ref.model.state_dict().values(), seg.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    imgs = torch.randint(0, 256, (3, 3, 64, 96), dtype=torch.uint8)
    pred = seg.predict(imgs)
    assert pred.shape == (3, 64, 96) and pred.min() >= 0 and pred.max() < 19
    assert torch.equal(pred[1:2], seg.predict(imgs[1:2]))
    with pytest.raises(TypeError):
        seg.predict(imgs.float())


def test_checkpoint_with_numpy_meta_loads_under_the_allow_list(tmp_path):
    from seg_eval.segmenter import Segmenter

    _save_random_checkpoint(tmp_path / "w.pth", {"iter": np.int64(5), "hist": np.arange(3.0)})
    Segmenter(EMBEDDED_SEG_CONFIG, tmp_path / "w.pth")


class _Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_checkpoint_with_arbitrary_objects_needs_trust(tmp_path):
    from seg_eval.checkpoint import load_checkpoint_file

    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": {"x": _Payload()}}, tmp_path / "evil.pth")
    with pytest.raises(BenchError, match="--trust-checkpoint"):
        load_checkpoint_file(tmp_path / "evil.pth")
    assert "state_dict" in load_checkpoint_file(tmp_path / "evil.pth", trust=True)


def test_corrupt_missing_and_mismatched_checkpoints(tmp_path):
    from seg_eval.segmenter import Segmenter

    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(BenchError, match="corrupt"):
        Segmenter(EMBEDDED_SEG_CONFIG, tmp_path / "bad.pth")
    with pytest.raises(BenchError, match="does not exist"):
        Segmenter(EMBEDDED_SEG_CONFIG, tmp_path / "absent.pth")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(BenchError, match="does not fit"):
        Segmenter(EMBEDDED_SEG_CONFIG, tmp_path / "other.pth")


def test_config_with_wrong_class_count_is_refused(tmp_path):
    from seg_eval.segmenter import Segmenter

    text = EMBEDDED_SEG_CONFIG.read_text().replace("num_classes=19", "num_classes=21")
    (tmp_path / "voc.py").write_text(text)
    with pytest.raises(BenchError, match="21 classes"):
        Segmenter(tmp_path / "voc.py", None)


def test_our_class_names_are_mmsegs_cityscapes_classes():
    """The class check on checkpoints compares with these names: they must be mmseg's own."""
    from bench.base.classes import CLASSES
    from seg_eval import mmcv_compat  # noqa: F401

    from mmseg.datasets import CityscapesDataset

    assert tuple(CityscapesDataset.METAINFO["classes"]) == tuple(CLASSES)


def test_embedded_evaluators_are_a_registry_and_the_main_ones_weights_keep_their_name(tmp_path):
    from bench.run_spec import _suite_options_from_dict, _suite_options_to_dict
    from bench.suites import (
        EMBEDDED_EVALUATORS,
        SHIPPED_WEIGHTS,
        SuiteOptions,
        build_suite,
        register_embedded_evaluator,
    )

    assert EMBEDDED_EVALUATORS.names()[:2] == ["unet", "erfnet"]
    main = build_suite("synthcity")
    shipped = sorted(p.stem for p in SHIPPED_WEIGHTS.glob("synthcity_unet-*.pth"))
    assert main.evaluator_name == "unet" and main.segmenter_weights().stem in shipped  # named as before the registry
    second = build_suite("synthcity", SuiteOptions(evaluator="erfnet"))
    assert second.seg_train_spec().iterations == 2400 and second.evaluator.config.name == "synthcity_erfnet.py"
    assert second.segmenter_weights().stem.startswith("synthcity_erfnet-")
    # shipped, under the name of the config, spec and data it was trained from (edit one and this fails: retrain)
    shipped_second = SHIPPED_WEIGHTS / (second.segmenter_weights().stem + ".json")
    manifest = json.loads(shipped_second.read_text())
    assert manifest["meets_bar"] and manifest["clean_miou"] >= 0.80 and manifest["noise_drop"] >= 0.15
    assert manifest["sha256"] == hashlib.sha256(shipped_second.with_suffix(".pth").read_bytes()).hexdigest()
    assert "--evaluator erfnet" in second.prepare_command
    opts = _suite_options_from_dict(_suite_options_to_dict(SuiteOptions(evaluator="erfnet")))
    assert opts.evaluator == "erfnet"  # workers score with the evaluator the command line named
    config = tmp_path / "mine.py"
    config.write_text(second.evaluator.config.read_text() + "# another text, other weights\n")
    register_embedded_evaluator("test-plugin-copy", config, "a plugin's evaluator", iterations=3)
    mine = build_suite("synthcity", SuiteOptions(evaluator="test-plugin-copy"))
    assert mine.segmenter_weights().stem.startswith("synthcity_test-plugin-copy-") and mine.locate_segmenter() is None
    with pytest.raises(ValueError, match="registered twice"):
        register_embedded_evaluator("test-plugin-copy", config, "again")
    with pytest.raises(BenchError, match="did you mean 'erfnet'"):
        build_suite("synthcity", SuiteOptions(evaluator="erfnett"))
