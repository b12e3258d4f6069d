"""Suites: where a grid's data, segmenter and weights come from. Same code paths, different inputs.

- ``synthcity`` (default): procedural scenes and an mmseg evaluator trained here, nothing downloaded.
- ``cityscapes``: the real dataset and any mmseg Cityscapes config + checkpoint the user names.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.atomic import atomic_write_json, sha256_file
from bench.errors import BenchError
from bench.paths import REPO_ROOT, cache_root
from bench.registry import unknown_name_message
from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity

EMBEDDED_SEG_CONFIG = REPO_ROOT / "seg_eval" / "configs" / "synthcity_unet.py"
# Weights produced by `python -m bench prepare --force` and committed, so that a fresh clone needs no
# training; used only when their name (data version + config text + training spec) matches and
# their checksum is right. Weights trained here (in the cache) take precedence.
SHIPPED_WEIGHTS = REPO_ROOT / "seg_eval" / "weights"
# The evaluator must separate objectives: clean mIoU at least this, and noise at sigma 50 must cost at least this.
MIN_CLEAN_MIOU, MIN_NOISY_DROP, DROP_SIGMA = 0.80, 0.15, 50.0


@dataclass
class SuiteOptions:
    """What the command line may say about a suite (all optional for synthcity)."""

    data_root: Path | None = None
    seg_config: Path | None = None
    seg_checkpoint: Path | None = None
    trust_checkpoint: bool = False
    synthcity: SynthcitySpec = field(default_factory=SynthcitySpec)
    seg_train: object | None = None  # a seg_eval.train_embedded.SegTrainSpec; None: the default


class Suite:
    name: str
    trust_checkpoint = False

    def data_root(self, log=print) -> Path:
        raise NotImplementedError

    def segmenter_files(self, log=print) -> tuple[Path, Path]:
        """(config, checkpoint) of the evaluator; prepared or checked here."""
        raise NotImplementedError

    def build_segmenter(self, device: str, log=print):
        from seg_eval.segmenter import Segmenter

        config, ckpt = self.segmenter_files(log)
        return Segmenter(config, ckpt, device=device, trust_checkpoint=self.trust_checkpoint)


class SynthcitySuite(Suite):
    name = "synthcity"

    def __init__(self, opts: SuiteOptions) -> None:
        self.spec = opts.synthcity
        self.cache = cache_root()
        if opts.seg_config or opts.seg_checkpoint:
            raise BenchError("synthcity uses its own embedded evaluator; --seg-config/--seg-checkpoint are for --suite cityscapes")
        self._root = opts.data_root
        self._seg_train = opts.seg_train

    def data_root(self, log=print) -> Path:
        return ensure_synthcity(self.spec, root=self._root, log=log)

    def seg_train_spec(self):
        from seg_eval.train_embedded import SegTrainSpec

        return self._seg_train or SegTrainSpec()

    def segmenter_paths(self) -> tuple[Path, Path]:
        """(checkpoint, manifest) named by what determines the weights: data, config text, training spec."""
        key = json.dumps({"data": self.spec.key(), "config": EMBEDDED_SEG_CONFIG.read_text(),
                          "train": asdict(self.seg_train_spec())}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        stem = self.cache / "weights" / f"synthcity_unet-{self.spec.key()}-{digest}"
        return stem.with_suffix(".pth"), stem.with_suffix(".json")

    def locate_segmenter(self) -> tuple[Path, dict] | None:
        """(checkpoint, manifest) of usable weights: trained here (cache) first, else shipped; None if neither."""
        ckpt, manifest = self.segmenter_paths()
        for c, m in ((ckpt, manifest), (SHIPPED_WEIGHTS / ckpt.name, SHIPPED_WEIGHTS / manifest.name)):
            if not (c.is_file() and m.is_file()):
                continue
            meta = json.loads(m.read_text())
            if meta.get("sha256") != sha256_file(c):
                raise BenchError(f"embedded segmenter {c} does not match its recorded checksum (corrupt?); "
                                 "run `python -m bench prepare --force` to retrain it")
            return c, meta
        return None

    def segmenter_files(self, log=print) -> tuple[Path, Path]:
        found = self.locate_segmenter()
        if found is None:
            self.prepare_segmenter(log=log)
            found = self.locate_segmenter()
        return EMBEDDED_SEG_CONFIG, found[0]

    def prepare_segmenter(self, force: bool = False, log=print) -> dict:
        """Train the evaluator on clean synthcity (if absent or forced), measure it, write its manifest."""
        from seg_eval.train_embedded import train_segmenter

        ckpt, manifest = self.segmenter_paths()
        found = None if force else self.locate_segmenter()
        if found is not None:
            return found[1]
        root = self.data_root(log)
        spec = self.seg_train_spec()
        log(f"training the embedded segmenter ({spec.iterations} iterations) -> {ckpt}")
        train_meta = train_segmenter(EMBEDDED_SEG_CONFIG, root, ckpt, spec, log=log)
        quality = self._measure(ckpt, root)
        meta = {"checkpoint": ckpt.name, "sha256": sha256_file(ckpt), "config": EMBEDDED_SEG_CONFIG.name,
                "data": self.spec.key(), "train": train_meta, **quality}
        atomic_write_json(manifest, meta)
        return meta

    def _measure(self, ckpt: Path, root: Path) -> dict:
        import torch

        from bench.data import SplitData
        from bench.evaluate import evaluate, identity_restore
        from seg_eval.segmenter import Segmenter

        seg = Segmenter(EMBEDDED_SEG_CONFIG, ckpt, device="cpu")
        val = SplitData(root, "val")
        clean = evaluate(None, val, (), 0, seg, torch.device("cpu"))["clean"]["miou"]
        noisy = evaluate(identity_restore, val, (DROP_SIGMA,), 0, seg, torch.device("cpu"))[f"{DROP_SIGMA:g}"]["miou"]
        return {"clean_miou": round(clean, 4), f"noisy_miou_sigma{DROP_SIGMA:g}": round(noisy, 4),
                "noise_drop": round(clean - noisy, 4),
                "meets_bar": bool(clean >= MIN_CLEAN_MIOU and clean - noisy >= MIN_NOISY_DROP)}


class CityscapesSuite(Suite):
    name = "cityscapes"

    def __init__(self, opts: SuiteOptions) -> None:
        root = opts.data_root or os.environ.get("CITYSCAPES_DATASET")
        if not root:
            raise BenchError("the cityscapes suite needs the dataset: pass --data-root DIR (the folder holding "
                             "leftImg8bit/ and gtFine/) or set CITYSCAPES_DATASET")
        self._root = Path(root)
        if not (opts.seg_config and opts.seg_checkpoint):
            raise BenchError("the cityscapes suite needs a segmenter: pass --seg-config (an mmseg Cityscapes config "
                             "file) and --seg-checkpoint (its weights file)")
        self.config, self.checkpoint = Path(opts.seg_config), Path(opts.seg_checkpoint)
        self.trust_checkpoint = opts.trust_checkpoint

    def data_root(self, log=print) -> Path:
        from bench.data import list_split

        for split in ("train", "val"):
            list_split(self._root, split)  # raises a clear error on a wrong layout
        return self._root

    def segmenter_files(self, log=print) -> tuple[Path, Path]:
        for p, what in ((self.config, "config"), (self.checkpoint, "checkpoint")):
            if not p.is_file():
                raise BenchError(f"segmenter {what} {p} does not exist")
        return self.config, self.checkpoint


SUITES = {"synthcity": SynthcitySuite, "cityscapes": CityscapesSuite}


def build_suite(name: str, opts: SuiteOptions | None = None) -> Suite:
    if name not in SUITES:
        raise BenchError(unknown_name_message("suite", name, SUITES))
    return SUITES[name](opts or SuiteOptions())
