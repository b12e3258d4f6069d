"""Degradations: what a denoiser is trained and scored on, as a registry (``@register_degradation``).

``DEGRADATIONS`` / ``register_degradation`` / ``build_degradation`` (``bench.degradations.registry``); each built-in
is one module of ``bench/degradations/builtin/`` (gaussian, poisson_gaussian, spatially_variant, gaussian_jpeg).
"""
from bench.degradations.registry import (
    DEFAULT_DEGRADATION,
    DEGRADATIONS,
    Degradation,
    build_degradation,
    register_degradation,
)

__all__ = ["DEFAULT_DEGRADATION", "DEGRADATIONS", "Degradation", "build_degradation", "register_degradation"]
