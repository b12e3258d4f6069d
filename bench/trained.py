"""Trained weights, read: the one loading path of a cell's training checkpoint for everything that reads results
(reports' figures, the instrument check, re-scoring), so that the reading side never imports the training loop.

A checkpoint (``<cell>/train.pth``, written by ``bench.train``) is a dict of tensors and plain values, loaded with
``weights_only=True``; ``CKPT_FORMAT`` is its version.
"""
from __future__ import annotations

from pathlib import Path

import torch

from bench.base.errors import BenchError, first_line
from bench.config import cell_from_dict
from models.base import Denoiser

CKPT_FORMAT = 1


def read_checkpoint(path: Path) -> dict:
    """A training checkpoint's dict, loaded with ``weights_only=True``; ValueError if not of this format."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") != CKPT_FORMAT:
        raise ValueError(f"format {ckpt.get('format')!r}")
    return ckpt


def scored_weights(ckpt: dict) -> dict[str, torch.Tensor]:
    """The model weights a checkpoint's cell is scored with: its moving average's, else its last iterate's."""
    if ckpt.get("evaluated") == "ema":
        prefix = "module."
        return {k[len(prefix):]: v for k, v in ckpt["ema"].items() if k.startswith(prefix)}
    return ckpt["model"]


def load_trained_denoiser(cell: dict, ckpt_path: Path) -> Denoiser:
    """The denoiser of a cell (its ``config`` dict, as results hold it) with the weights that were scored
    (the moving average where the cell kept one), in eval mode."""
    from models import build_backbone

    cfg = cell_from_dict(cell)
    model = build_backbone(cfg.backbone, **dict(cfg.backbone_kwargs))
    try:
        ckpt = read_checkpoint(ckpt_path)
        model.load_state_dict(scored_weights(ckpt))
    except Exception as e:  # noqa: BLE001 - any failure means the file cannot be trusted
        raise BenchError(f"training checkpoint {ckpt_path} is corrupt or does not match its cell "
                         f"({first_line(e)})") from None
    return model.eval()


