"""Pretrained weights of the loss networks, from a given path or the torch hub cache; never downloaded.

The cityscapes suite uses torchvision's ImageNet VGG19 (perceptual, contextual, D2SM) and
AlexNet (the LPIPS backbone). Both are looked up as torchvision stores them after a download
(``$TORCH_HOME/hub/checkpoints/<file>``); when absent the error says how to fetch them.
"""
from __future__ import annotations

from pathlib import Path

import torch

from bench.base.errors import BenchError, first_line
from losses.vgg import VGGFeatures

# torchvision's file names (the hash suffix is part of the name torchvision checks).
TORCHVISION_FILES = {
    "vgg19": ("vgg19-dcbb9e9d.pth", "torchvision.models.vgg19(weights='IMAGENET1K_V1')"),
    "alexnet": ("alexnet-owt-7be5be79.pth", "torchvision.models.alexnet(weights='IMAGENET1K_V1')"),
}


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def fetch_command(arch: str) -> str:
    _, call = TORCHVISION_FILES[arch]
    return f'python -c "import torchvision; {call}"'


def resolve_torchvision_weights(arch: str, given: Path | None = None) -> Path:
    """The weights file of torchvision's ImageNet ``arch``: ``given`` if set, else the hub cache."""
    name, _ = TORCHVISION_FILES[arch]
    if given is not None:
        path = Path(given)
        if path.is_dir():
            path = path / name
        if not path.is_file():
            raise BenchError(f"{arch} weights {path} do not exist")
        return path
    path = hub_checkpoint_dir() / name
    if not path.is_file():
        raise BenchError(f"ImageNet {arch} weights are not in the torch hub cache ({path}). On a machine with "
                         f"internet run `{fetch_command(arch)}` and copy {name} there (or set TORCH_HOME), or pass "
                         "the file's path; nothing is downloaded without being asked")
    return path


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A tensors-only state dict (``weights_only=True``); a ``{'state_dict': ...}`` wrapper is unwrapped."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file cannot be used
        raise BenchError(f"cannot load weights {path}: {first_line(e)} (corrupt, or not a "
                         "tensors-only state dict)") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BenchError(f"weights {path} are not a state dict of tensors")
    return obj


def load_vgg(path: Path, width: float = 1.0) -> VGGFeatures:
    """A frozen VGGFeatures with the ``features.*`` weights of ``path`` (torchvision's or ours)."""
    sd = {k: v for k, v in load_state_dict_file(path).items() if k.startswith("features.")}
    net = VGGFeatures(width)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise BenchError(f"weights {path} do not fit a VGG19 of width {width:g}: {first_line(e)}") from None
    return net.to(memory_format=torch.channels_last).freeze()
