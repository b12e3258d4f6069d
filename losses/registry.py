"""The objective registry: ``@register_objective(name, description, **defaults)`` on an ``Objective`` class.

Built-in objectives are the modules of ``losses/`` (imported on first lookup); outside ones come from
``--plugin`` modules, the ``d2sm_bench.objectives`` entry points or a dotted path ``my_pkg.losses:Charbonnier``.
"""
from __future__ import annotations

from bench.base.registry import FactoryRegistry
from losses.base import Objective, Resources

OBJECTIVES = FactoryRegistry("objective", "losses", "d2sm_bench.objectives")
register_objective = OBJECTIVES.decorator


def objective_needs(name: str) -> frozenset[str]:
    """The frozen networks objective ``name`` takes as constructor arguments ("features", "lpips", "segmenter")."""
    return frozenset(getattr(OBJECTIVES.get(name).factory, "needs", frozenset()))


def objective_params(name: str, **overrides) -> dict:
    """The effective hyper-parameters of objective ``name`` (signature defaults < registered < overrides),
    without the frozen networks it needs."""
    needs = objective_needs(name)
    return {k: v for k, v in OBJECTIVES.params(name, **overrides).items() if k not in needs}


def build_objective(name: str, resources: Resources | None = None, **overrides) -> Objective:
    """The objective ``name`` with its registered defaults, ``overrides`` on top, needs from ``resources``."""
    needs = {n: (resources or Resources()).get(n) for n in objective_needs(name)}
    OBJECTIVES.get(name).check_params(overrides, f"objective {name}")
    return OBJECTIVES.build(name, **{**overrides, **needs})


# Default weights of the extra terms (the paper gives none), one rule for all: at the start of training
# (restored = noisy input) each term's gradient with respect to the restored image is about 0.4x the L1
# term's, so that L1 stays the anchor and the term regularises; measured on the embedded suite by
# `python -m bench.benchmarks.objective_scale`. Two exceptions: `ssim` keeps the usual L1 + (1 - SSIM), and
# `gan` uses 0.01 (adversarial gradients grow as the discriminator learns: 1.0 collapsed to 9.5 dB in 600
# steps). Weights 10x larger (1-4x L1's gradient) made the internal D2SM family lose 4 dB on synthcity.
# Any weight can be overridden per cell (objective_kwargs); the effective ones are part of the cell's hash.
