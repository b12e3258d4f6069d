"""Suites: where a grid's data, segmenter and weights come from. Same code paths, different inputs.

- ``synthcity`` (default): procedural scenes and an mmseg evaluator trained here, nothing downloaded.
- ``cityscapes``: the real dataset and any mmseg Cityscapes config + checkpoint the user names.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.base.errors import BenchError
from bench.base.registry import Registry
from bench.embedded_weights import EmbeddedWeights, digest_of
from bench.paths import REPO_ROOT, cache_root
from bench.synthcity.dataset import SynthcitySpec, ensure_synthcity

EMBEDDED_SEG_CONFIG = REPO_ROOT / "seg_eval" / "configs" / "synthcity_unet.py"  # the main evaluator's config
# Weights produced by `python -m bench prepare --force` and committed, so that a fresh clone needs no
# training; used only when their name (data version + config text + training spec) matches and
# their checksum is right. Weights trained here (in the cache) take precedence.
SHIPPED_WEIGHTS = REPO_ROOT / "seg_eval" / "weights"
SHIPPED_FEATURE_WEIGHTS = REPO_ROOT / "losses" / "weights"
# The evaluator must separate objectives: clean mIoU at least this, and noise at sigma 50 must cost at least this.
MIN_CLEAN_MIOU, MIN_NOISY_DROP, DROP_SIGMA = 0.80, 0.15, 50.0


@dataclass(frozen=True)
class EmbeddedEvaluator:
    """A segmenter the synthcity suite trains for itself on its clean train split (``bench prepare``) and scores
    with: an mmseg config (19 Cityscapes classes) and the ``SegTrainSpec`` fields that differ from the defaults."""

    config: Path
    description: str
    train: tuple[tuple[str, object], ...] = ()


EMBEDDED_EVALUATORS: Registry[EmbeddedEvaluator] = Registry("embedded evaluator",
                                                            entry_point_group="d2sm_bench.evaluators")
MAIN_EVALUATOR = "unet"  # the suite's evaluator unless --evaluator names another


def register_embedded_evaluator(name: str, config: Path, description: str, order: float = 1000.0,
                                **train: object) -> EmbeddedEvaluator:
    """Register an embedded synthcity evaluator: ``config`` an mmseg config file, ``train`` ``SegTrainSpec`` fields
    (``iterations=2000``). Its weights are named by the data version, the config's text and the training spec."""
    ev = EmbeddedEvaluator(Path(config), description, tuple(sorted(train.items())))
    EMBEDDED_EVALUATORS.register(name, ev, order=order)
    return ev


register_embedded_evaluator("unet", EMBEDDED_SEG_CONFIG, "mmseg UNet backbone + FCN head, 1.8 M parameters: the "
                            "suite's evaluator", order=0)
register_embedded_evaluator("erfnet", REPO_ROOT / "seg_eval" / "configs" / "synthcity_erfnet.py",
                            "mmseg ERFNet (factorised 1-D convolutions, no skip connections) + FCN head, 0.44 M "
                            "parameters: a second evaluator, to ask whether a ranking depends on the segmenter",
                            order=1, iterations=2400)


@dataclass
class SuiteOptions:
    """What the command line may say about a suite (all optional for synthcity)."""

    data_root: Path | None = None
    seg_config: Path | None = None
    seg_checkpoint: Path | None = None
    trust_checkpoint: bool = False
    allow_download: bool = False  # cityscapes: fetch a segmenter checkpoint given as a URL (or "zoo")
    vgg_weights: Path | None = None  # cityscapes: torchvision vgg19 file (default: the torch hub cache)
    lpips_weights: Path | None = None  # cityscapes: torchvision alexnet file for LPIPS (default: the hub cache)
    synthcity: SynthcitySpec = field(default_factory=SynthcitySpec)
    seg_train: object | None = None  # a seg_eval.train_embedded.SegTrainSpec; None: the default
    feature_train: object | None = None  # a losses.train_features.FeatureTrainSpec; None: the default
    label_root: Path | None = None  # cityscapes: train-id labels under label_root/gtFine (a read-only dataset)
    evaluator: str | None = None  # synthcity: an embedded evaluator's name (EMBEDDED_EVALUATORS); None: the main one


class Suite:
    name: str
    trust_checkpoint = False
    label_root: Path | None = None  # where gtFine/ lies when not beside leftImg8bit/

    def data_root(self, log=print) -> Path:
        raise NotImplementedError

    def segmenter_files(self, log=print) -> tuple[Path, Path]:
        """(config, checkpoint) of the evaluator; prepared or checked here."""
        raise NotImplementedError

    def build_segmenter(self, device: str, log=print):
        from seg_eval.segmenter import Segmenter

        config, ckpt = self.segmenter_files(log)
        return Segmenter(config, ckpt, device=device, trust_checkpoint=self.trust_checkpoint)

    def feature_files(self, log=print) -> tuple[Path, float]:
        """(weights file, width) of the frozen VGG19 of the feature objectives."""
        raise NotImplementedError

    def build_features(self, device: str, log=print):
        """The frozen VGG19 trunk (losses.vgg.VGGFeatures) on ``device``."""
        from losses.pretrained import load_vgg

        path, width = self.feature_files(log)
        return load_vgg(path, width).to(device)

    def build_lpips(self, device: str, log=print):
        """The LPIPS distance module (x, y in [0, 1] -> (B,)) on ``device``."""
        raise NotImplementedError


SUITES: Registry[type[Suite]] = Registry("suite", entry_point_group="d2sm_bench.suites")


def register_suite(name: str):
    """Class decorator: a ``Suite`` subclass built as ``cls(SuiteOptions)`` for ``--suite name``."""
    return SUITES.register(name)


@register_suite("synthcity")
class SynthcitySuite(Suite):
    name = "synthcity"

    def __init__(self, opts: SuiteOptions) -> None:
        self.spec = opts.synthcity
        self.cache = cache_root()
        if opts.seg_config or opts.seg_checkpoint:
            raise BenchError("synthcity uses its own embedded evaluator; --seg-config/--seg-checkpoint are for --suite cityscapes")
        self._root = opts.data_root
        self.evaluator_name = opts.evaluator or MAIN_EVALUATOR
        self.evaluator = EMBEDDED_EVALUATORS.get(self.evaluator_name)  # an unknown name: one line, close matches
        self._seg_train = opts.seg_train
        self._feature_train = opts.feature_train

    def data_root(self, log=print) -> Path:
        return ensure_synthcity(self.spec, root=self._root, log=log)

    def seg_train_spec(self):
        from seg_eval.train_embedded import SegTrainSpec

        return self._seg_train or SegTrainSpec(**dict(self.evaluator.train))

    @property
    def prepare_command(self) -> str:
        """The command that (re)trains this suite's evaluator."""
        extra = "" if self.evaluator_name == MAIN_EVALUATOR else f" --evaluator {self.evaluator_name}"
        return f"python -m bench prepare --only segmenter --force{extra}"

    def segmenter_weights(self) -> EmbeddedWeights:
        """The evaluator's weights, named by what determines them: data, config text, training spec."""
        key = {"data": self.spec.key(), "config": self.evaluator.config.read_text(),
               "train": asdict(self.seg_train_spec())}
        return EmbeddedWeights(f"synthcity_{self.evaluator_name}-{self.spec.key()}-{digest_of(key)}",
                               self.cache / "weights", SHIPPED_WEIGHTS,
                               f"embedded segmenter ({self.evaluator_name})", self.prepare_command)

    def locate_segmenter(self) -> tuple[Path, dict] | None:
        """(checkpoint, manifest) of usable weights: trained here (cache) first, else shipped; None if neither."""
        return self.segmenter_weights().locate()

    def segmenter_files(self, log=print) -> tuple[Path, Path]:
        found = self.locate_segmenter()
        if found is None:
            self.prepare_segmenter(log=log)
            found = self.locate_segmenter()
        return self.evaluator.config, found[0]

    def prepare_segmenter(self, force: bool = False, log=print) -> dict:
        """Train the evaluator on clean synthcity (if absent or forced), measure it, write its manifest."""
        from seg_eval.train_embedded import train_segmenter

        weights = self.segmenter_weights()
        found = None if force else weights.locate()
        if found is not None:
            return found[1]
        root = self.data_root(log)
        spec = self.seg_train_spec()
        log(f"training the embedded segmenter {self.evaluator_name} ({spec.iterations} iterations) -> "
            f"{weights.checkpoint}")
        train_meta = train_segmenter(self.evaluator.config, root, weights.checkpoint, spec, log=log)
        quality = self._measure(weights.checkpoint, root)
        return weights.record({"config": self.evaluator.config.name, "data": self.spec.key(), "train": train_meta,
                               **quality})

    def feature_train_spec(self):
        from losses.train_features import FeatureTrainSpec

        return self._feature_train or FeatureTrainSpec()

    def feature_weights(self) -> EmbeddedWeights:
        """The feature network's weights, named by data version, network version and training spec."""
        from losses.train_features import FEATURE_NET_VERSION

        spec = self.feature_train_spec()
        key = {"data": self.spec.key(), "version": FEATURE_NET_VERSION, "train": asdict(spec)}
        return EmbeddedWeights(f"synthcity_vgg19w{spec.width:g}-{self.spec.key()}-{digest_of(key)}",
                               self.cache / "weights", SHIPPED_FEATURE_WEIGHTS, "embedded feature network",
                               "python -m bench prepare --force")

    def prepare_features(self, force: bool = False, log=print) -> dict:
        """Train the VGG19-topology feature network on synthcity (if absent or forced); write its manifest."""
        import torch

        from bench.base.data import SplitData
        from losses.train_features import train_feature_network

        weights = self.feature_weights()
        found = None if force else weights.locate()
        if found is not None:
            return found[1]
        root = self.data_root(log)
        splits = {}
        for split in ("train", "val"):
            data = SplitData(root, split, cache=False)
            items = [data[i] for i in range(len(data))]
            splits[split] = (torch.stack([im for im, _ in items]), torch.stack([lb for _, lb in items]))
        spec = self.feature_train_spec()
        log(f"training the embedded feature network ({spec.iterations} iterations) -> {weights.checkpoint}")
        meta = train_feature_network(splits["train"], splits["val"], weights.checkpoint, spec, log=log)
        return weights.record({"data": self.spec.key(), **meta})

    def feature_files(self, log=print) -> tuple[Path, float]:
        weights = self.feature_weights()
        found = weights.locate()
        if found is None:
            self.prepare_features(log=log)
            found = weights.locate()
        return found[0], self.feature_train_spec().width

    def build_lpips(self, device: str, log=print):
        from losses.lpips_distance import LPIPSOnFeatures

        return LPIPSOnFeatures(self.build_features(device, log))

    def _measure(self, ckpt: Path, root: Path) -> dict:
        import torch

        from bench.base.data import SplitData
        from bench.evaluate import evaluate, identity_restore
        from seg_eval.segmenter import Segmenter

        seg = Segmenter(self.evaluator.config, ckpt, device="cpu")
        val = SplitData(root, "val")
        clean = evaluate(None, val, (), 0, seg, torch.device("cpu"))["clean"]["miou"]
        noisy = evaluate(identity_restore, val, (DROP_SIGMA,), 0, seg, torch.device("cpu"))[f"{DROP_SIGMA:g}"]["miou"]
        return {"clean_miou": round(clean, 4), f"noisy_miou_sigma{DROP_SIGMA:g}": round(noisy, 4),
                "noise_drop": round(clean - noisy, 4),
                "meets_bar": bool(clean >= MIN_CLEAN_MIOU and clean - noisy >= MIN_NOISY_DROP)}


@register_suite("cityscapes")
class CityscapesSuite(Suite):
    name = "cityscapes"

    def __init__(self, opts: SuiteOptions) -> None:
        root = opts.data_root or os.environ.get("CITYSCAPES_DATASET")
        if not root:
            raise BenchError("the cityscapes suite needs the dataset: pass --data-root DIR (the folder holding "
                             "leftImg8bit/ and gtFine/) or set CITYSCAPES_DATASET")
        if opts.evaluator:
            raise BenchError(f"--evaluator {opts.evaluator}: names one of synthcity's embedded evaluators; the "
                             "cityscapes suite's evaluator is --seg-config and --seg-checkpoint")
        self._root = Path(root)
        self.label_root = Path(opts.label_root) if opts.label_root else None
        if not (opts.seg_config and opts.seg_checkpoint):
            raise BenchError("the cityscapes suite needs a segmenter: pass --seg-config (an mmseg Cityscapes config: "
                             "a file, or a name among mmseg's, e.g. segformer_mit-b0_8xb1-160k_cityscapes-1024x1024) "
                             "and --seg-checkpoint (its weights: a file, a URL, or 'zoo' for the model zoo's, with "
                             "--allow-download)")
        from seg_eval.resolve import resolve_config

        self.config = resolve_config(opts.seg_config)
        self.checkpoint_spec = str(opts.seg_checkpoint)
        self.allow_download = opts.allow_download
        self.trust_checkpoint = opts.trust_checkpoint
        self.vgg_weights, self.lpips_weights = opts.vgg_weights, opts.lpips_weights

    def data_root(self, log=print) -> Path:
        from bench.cityscapes import validate

        validate(self._root, log, self.label_root)  # a wrong layout, missing train ids; warns on subsets
        return self._root

    def segmenter_files(self, log=print) -> tuple[Path, Path]:
        from seg_eval.resolve import resolve_checkpoint

        return self.config, resolve_checkpoint(self.checkpoint_spec, self.config, self.allow_download, log)

    def feature_files(self, log=print) -> tuple[Path, float]:
        from losses.pretrained import resolve_torchvision_weights

        return resolve_torchvision_weights("vgg19", self.vgg_weights), 1.0

    def build_lpips(self, device: str, log=print):
        from losses.lpips_distance import LPIPSPackage
        from losses.pretrained import resolve_torchvision_weights

        return LPIPSPackage(resolve_torchvision_weights("alexnet", self.lpips_weights)).to(device)


def build_suite(name: str, opts: SuiteOptions | None = None) -> Suite:
    return SUITES.get(name)(opts or SuiteOptions())
