"""A frozen mmsegmentation model that labels batches of uint8 images in memory.

Built with mmseg's own ``init_model`` (config file or name, no weights fetched) and weights loaded by
:mod:`seg_eval.checkpoint`. Inference runs the config's own data preprocessor and test mode (whole or
slide) through ``model.predict``; images go in as (B, 3, H, W) uint8 RGB, exactly the bytes a saved
PNG would hold.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import torch

from bench.base.atomic import sha256_file
from bench.base.classes import CLASSES
from bench.base.errors import BenchError
from seg_eval import mmcv_compat  # noqa: F401
from seg_eval.checkpoint import load_checkpoint_file, state_dict_of


@contextlib.contextmanager
def quiet_mmengine():
    """Silence mmengine's INFO chatter (weight-init tables) for the duration."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_config(config: str | Path):
    from mmengine import Config

    path = Path(config)
    if not path.is_file():
        raise BenchError(f"segmenter config {config} does not exist")
    return Config.fromfile(str(path))


class Segmenter:
    def __init__(self, config: str | Path, checkpoint: str | Path | None, device: str = "cpu",
                 trust_checkpoint: bool = False, num_classes: int = len(CLASSES)) -> None:
        from mmengine.runner.checkpoint import load_state_dict
        from mmseg.apis import init_model

        cfg = load_config(config)
        heads = cfg.model.get("decode_head", {})
        head_classes = heads.get("num_classes") if isinstance(heads, dict) else None
        if head_classes is not None and head_classes != num_classes:
            raise BenchError(f"segmenter config {config} predicts {head_classes} classes; the benchmark needs the "
                             f"{num_classes} Cityscapes train classes")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = init_model(cfg, None, device=device)
        if device == "cpu":
            from mmengine.model import revert_sync_batchnorm

            self.model = revert_sync_batchnorm(self.model)  # Cityscapes configs use SyncBN; one CPU process has none
        self.config_path = str(config)
        self.checkpoint_path = str(checkpoint) if checkpoint else None
        self.checkpoint_sha256 = None
        if checkpoint is not None:
            ckpt = load_checkpoint_file(Path(checkpoint), trust=trust_checkpoint)
            sd = state_dict_of(ckpt)
            missing = set(self.model.state_dict()) - set(sd)
            if missing:
                raise BenchError(f"checkpoint {checkpoint} does not fit config {config}: "
                                 f"{len(missing)} weights missing, e.g. {sorted(missing)[0]}")
            classes = (ckpt.get("meta") or {}).get("dataset_meta", {}).get("classes")
            if classes is not None and tuple(classes) != tuple(CLASSES):
                raise BenchError(f"checkpoint {checkpoint} was trained on {len(classes)} classes ({', '.join(classes[:3])}"
                                 ", ...), not the 19 Cityscapes train classes")
            shapes = self.model.state_dict()
            wrong = [k for k, v in sd.items() if k in shapes and tuple(v.shape) != tuple(shapes[k].shape)]
            if wrong:
                raise BenchError(f"checkpoint {checkpoint} does not fit config {config}: {wrong[0]} has shape "
                                 f"{tuple(sd[wrong[0]].shape)}, the config's is {tuple(shapes[wrong[0]].shape)}"
                                 + (" (a head for another number of classes than 19?)" if "conv_seg" in wrong[0] else ""))
            load_state_dict(self.model, sd, strict=True)
            self.checkpoint_sha256 = sha256_file(Path(checkpoint))
        self.model.eval()
        self.device = torch.device(device)
        self.bgr_input = bool(cfg.model.get("data_preprocessor", {}).get("bgr_to_rgb", False))
        self.num_classes = num_classes

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) uint8 RGB -> (B, H, W) int64 train ids."""
        from mmseg.structures import SegDataSample

        if images.dtype != torch.uint8:
            raise TypeError("Segmenter.predict takes uint8 images (quantise first, as a saved PNG would be)")
        h, w = images.shape[-2:]
        x = images.flip(1) if self.bgr_input else images  # mmseg configs expect cv2's BGR order
        samples = []
        for _ in range(x.shape[0]):
            s = SegDataSample()
            s.set_metainfo({"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w)})
            samples.append(s)
        data = self.model.data_preprocessor({"inputs": list(x.to(self.device)), "data_samples": samples}, False)
        inputs = data["inputs"].contiguous(memory_format=torch.channels_last)
        out = self.model.predict(inputs, data["data_samples"])
        return torch.stack([o.pred_sem_seg.data[0] for o in out]).cpu()

    def probe(self, size: tuple[int, int] = (64, 128)) -> None:
        """One tiny prediction: a model that needs compiled mmcv ops fails here, with the models that work."""
        self.predict(torch.zeros(1, 3, *size, dtype=torch.uint8))

    def logits(self, rgb: torch.Tensor) -> torch.Tensor:
        """Differentiable class scores for training objectives.

        rgb (B, 3, H, W) float RGB in [0, 1] (not quantised) -> (B, num_classes, H, W) logits, with the
        config's normalisation and its whole-image forward. The weights stay frozen; the gradient
        flows to ``rgb``.
        """
        pre = self.model.data_preprocessor
        x = (rgb * 255.0 - pre.mean.to(rgb)) / pre.std.to(rgb)  # the model sees RGB either way (see predict)
        h, w = rgb.shape[-2:]
        metas = [{"img_shape": (h, w), "ori_shape": (h, w), "pad_shape": (h, w)}] * rgb.shape[0]
        return self.model.encode_decode(x, metas)

    def freeze(self) -> Segmenter:
        self.model.eval().requires_grad_(False)
        return self
