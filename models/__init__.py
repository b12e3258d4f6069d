"""Denoising backbones, built by name: ``build_backbone("ffdnet")``."""
from models.base import Denoiser  # noqa: F401
from models.registry import BACKBONES, build_backbone, register_backbone  # noqa: F401
