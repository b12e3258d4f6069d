"""The backbone registry: ``@register_backbone(name, description, **defaults)`` on a ``Denoiser`` class.

Built-in backbones are the modules of ``models/`` (imported on first lookup); outside ones come from
``--plugin`` modules, the ``d2sm_bench.backbones`` entry points or a dotted path ``my_pkg.nets:DnCNN``.
"""
from __future__ import annotations

from collections.abc import Callable

from bench.registry import FactorySpec, Registry, factory_spec, import_submodules
from models.base import Denoiser

BACKBONES: Registry[FactorySpec] = Registry("backbone", builtins=lambda: import_submodules("models"),
                                           entry_point_group="d2sm_bench.backbones", wrap=factory_spec)


def register_backbone(name: str, description: str = "", order: float = 1000.0, **kwargs) -> Callable:
    """Class decorator: register ``cls(**kwargs, **overrides)`` as backbone ``name`` (stack it for variants)."""
    def deco(factory: Callable[..., Denoiser]) -> Callable[..., Denoiser]:
        BACKBONES.add(name, FactorySpec(name, factory, kwargs, description), order=order)
        return factory

    return deco


def backbone_params(name: str, **overrides) -> dict:
    """The effective constructor arguments of backbone ``name`` (signature defaults < registered < overrides)."""
    spec = BACKBONES.get(name)
    spec.check_params(overrides, f"backbone {name}")
    return spec.params(**overrides)


def build_backbone(name: str, **overrides) -> Denoiser:
    spec = BACKBONES.get(name)
    spec.check_params(overrides, f"backbone {name}")
    model = spec.build(**overrides)
    if not callable(getattr(model, "restore", None)):
        from bench.errors import BenchError

        raise BenchError(f"backbone {name} builds a {type(model).__name__}, which has no restore(noisy, sigma); "
                         "derive it from models.base.Denoiser")
    return model
