"""Training objectives, built by name: ``build_objective("ssim")``."""
from losses.base import Objective  # noqa: F401
from losses.registry import OBJECTIVES, build_objective, register_objective  # noqa: F401
