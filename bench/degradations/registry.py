"""The degradation registry: ``@register_degradation(name, description, **defaults)`` on a ``Degradation`` class.

A degradation has a **level** on the 0-255 scale that generalises the Gaussian sigma (each built-in says what it
means; the grid's ``test_sigmas`` are levels, training draws levels ~ U(0, ``train.sigma_max``)). It answers:

- ``draw_train(clean (B, 3, h, w) in [0, 1], level (B,) on the 0-1 scale, gen) -> (noisy, noise_map)``: a training
  batch, from the training loop's generator (a pure function of seed and iteration);
- ``draw_test(clean (3, H, W) in [0, 1], level (0-255), gen) -> (noisy, noise_map)``: one val image's test input;
  ``gen`` is seeded from (image id, level, seed), so the input is the same whatever the batch or the order.

``noisy`` is float (not clipped unless the degradation clips); ``noise_map`` is what a noise-map backbone (FFDNet)
receives: a 0-d tensor / (B,) std on the 0-1 scale where the degradation has one level per image (Gaussian), else a
per-pixel std map (1, H, W) / (B, 1, H, W). Outside degradations come from ``--plugin`` modules, grid files'
``plugins`` or the ``d2sm_bench.degradations`` entry points; a grid names one in ``[train] degradation`` (and
``degradation_params``) and, where it scores under another, in ``test_degradation``.
"""
from __future__ import annotations

from typing import Any

import torch

from bench.base.registry import FactoryRegistry

DEFAULT_DEGRADATION = "gaussian"


class Degradation:
    """Base class (see the module docstring). ``exact``: whether it has an exact-arithmetic training path
    (``bench.base.exact``: the same bits on every CPU); only those may train cells with ``arithmetic = "exact"``."""

    exact: bool = False

    def draw_train(self, clean: torch.Tensor, level: torch.Tensor, gen: torch.Generator, exact: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def draw_test(self, clean: torch.Tensor, level: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


DEGRADATIONS = FactoryRegistry("degradation", "bench.degradations.builtin", "d2sm_bench.degradations")
register_degradation = DEGRADATIONS.decorator


def build_degradation(name: str, params: Any = ()) -> Degradation:
    """The degradation ``name`` with ``params`` (a dict or (name, value) pairs) over its registered defaults; unknown
    names and parameters fail in one line."""
    params = dict(params)
    DEGRADATIONS.get(name).check_params(params, f"degradation {name}")
    made = DEGRADATIONS.build(name, **params)
    if not isinstance(made, Degradation):
        from bench.base.errors import BenchError

        raise BenchError(f"degradation {name} builds a {type(made).__name__}; derive it from "
                         "bench.degradations.Degradation")
    return made


def degradation_params(name: str, params: Any = ()) -> dict:
    """The effective parameters of ``name`` (its defaults with ``params`` over them)."""
    return DEGRADATIONS.params(name, **dict(params))
