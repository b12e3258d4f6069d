"""Denoising backbones, built by name: ``build_backbone("ffdnet")``."""
from models.registry import BACKBONES, Denoiser, build_backbone  # noqa: F401
