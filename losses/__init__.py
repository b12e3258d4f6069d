"""Training objectives, built by name: ``build_objective("ssim")``."""
from losses.registry import OBJECTIVES, Objective, build_objective  # noqa: F401
