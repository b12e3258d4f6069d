"""Denoising backbones, built by name: ``build_backbone("ffdnet")``."""
from models.registry import BACKBONES, build_backbone, Denoiser  # noqa: F401
