"""The backbone registry: ``@register_backbone(name, description, **defaults)`` on a ``Denoiser`` class.

Built-in backbones are the modules of ``models/`` (imported on first lookup); outside ones come from
``--plugin`` modules, the ``d2sm_bench.backbones`` entry points or a dotted path ``my_pkg.nets:DnCNN``.
"""
from __future__ import annotations

from bench.base.errors import BenchError
from bench.base.registry import FactoryRegistry
from models.base import Denoiser

BACKBONES = FactoryRegistry("backbone", "models", "d2sm_bench.backbones")
register_backbone = BACKBONES.decorator
backbone_params = BACKBONES.params


def build_backbone(name: str, **overrides) -> Denoiser:
    model = BACKBONES.build(name, **overrides)
    if not callable(getattr(model, "restore", None)):
        raise BenchError(f"backbone {name} builds a {type(model).__name__}, which has no restore(noisy, sigma); "
                         "derive it from models.base.Denoiser")
    return model
