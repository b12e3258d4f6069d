"""The metric registry: ``@register_metric(name, ...)`` on a compute function; one compute path, one aggregation.

A metric is computed per val image at one test level, in one of two kinds:

- ``"mean"``: ``compute(batch, env) -> (B,)`` float values, one per image; the level's value is their mean, and the
  per-image values are what the bootstrap resamples (PSNR, SSIM, MS-SSIM, LPIPS).
- ``"iou"``: ``compute(batch, env) -> (B, 4, K)`` per-image pixel counts per class (intersect, union, predicted,
  reference: mmsegmentation's four areas); the level's value is the mean over classes with a non-empty union of
  (summed intersect / summed union), and the per-image intersect and union are what the bootstrap resamples (mIoU,
  semantic consistency).

``batch`` is a :class:`MetricBatch`; ``needs`` says which of its optional fields the metric reads, so the evaluator
runs the segmenter (on the restored, and on the clean images) only when a chosen metric needs it. ``env`` gives
lazily built networks (``env.resources.get("lpips")``). Built-in metrics are the modules of ``bench/metrics/builtin/``
(one file each); outside ones come from ``--plugin`` modules, grid files' ``plugins`` or the ``d2sm_bench.metrics``
entry points, as backbones and objectives do.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.base.errors import BenchError
from bench.base.registry import Registry, import_submodules

KINDS = ("mean", "iou")
NEEDS = ("prediction", "clean_prediction", "labels")
DEFAULT_METRICS = ("psnr", "ssim", "miou")  # the paper's three: what a grid scores unless it says otherwise


@dataclass(frozen=True)
class MetricBatch:
    """One batch of val images at one test level.

    ``restored``, ``clean``: (B, 3, H, W) float in [0, 1]; ``restored`` is the uint8 output (what a saved PNG holds)
    over 255; under ``--protocol authors`` both are shaved as the authors' PSNR/SSIM are. ``restored_u8``,
    ``clean_u8``: (B, 3, H', W') uint8, whole. ``labels``: (B, H', W') int64 train ids (255 ignored);
    ``prediction``, ``clean_prediction``: (B, H', W') int64, the segmenter's on ``restored_u8`` and ``clean_u8``
    (None unless a chosen metric needs them)."""

    restored: torch.Tensor
    clean: torch.Tensor
    restored_u8: torch.Tensor
    clean_u8: torch.Tensor
    labels: torch.Tensor
    prediction: torch.Tensor | None = None
    clean_prediction: torch.Tensor | None = None


@dataclass
class MetricEnv:
    """What a metric may build once per evaluation: ``resources`` (``losses.base.Resources``: "lpips", "features",
    "segmenter"), the device, the number of classes, and a cache for the metric's own state."""

    resources: Any = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    num_classes: int = 19
    cache: dict = field(default_factory=dict)

    def resource(self, name: str, metric: str):
        if self.resources is None:
            raise BenchError(f"metric {metric} needs the suite's {name!r} network, which this evaluation was not "
                             "given (score it through `bench run`, or pass resources=)")
        return self.resources.get(name)


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: its name, direction, the closed range its values lie in, its kind and inputs, its column
    head, printed digits, the default regression tolerance of ``bench check``, and the compute function.
    ``areas_prefix`` (iou kind): the prefix of its per-image keys in a result file (mIoU keeps schema 2's
    ``intersect`` / ``union``; others are ``<name>.intersect``)."""

    name: str
    compute: Callable[[MetricBatch, MetricEnv], torch.Tensor]
    higher_is_better: bool
    range: tuple[float, float]
    kind: str = "mean"
    needs: tuple[str, ...] = ()
    head: str = ""
    unit: str = ""
    digits: int = 4
    tolerance: float = 0.01
    description: str = ""
    areas_prefix: str | None = None

    @property
    def label(self) -> str:
        return self.head or self.name

    @property
    def area_keys(self) -> tuple[str, str]:
        prefix = f"{self.name}." if self.areas_prefix is None else self.areas_prefix
        return f"{prefix}intersect", f"{prefix}union"

    def describe(self, env: MetricEnv | None = None) -> str:
        """What the numbers were measured with (a result records it): the description, with the network's where one
        is built (``describe`` attribute of the compute function)."""
        extra = getattr(self.compute, "describe", None)
        return extra(env) if callable(extra) and env is not None else self.description


def _builtins() -> None:
    import_submodules("bench.metrics.builtin")


def _wrap(name: str, obj: Any) -> MetricSpec:
    if isinstance(obj, MetricSpec):
        return obj
    spec = getattr(obj, "metric_spec", None)
    if isinstance(spec, MetricSpec):
        return spec
    raise BenchError(f"metric {name} names {obj!r}, which is not a function decorated with @register_metric")


METRICS: Registry[MetricSpec] = Registry("metric", _builtins, "d2sm_bench.metrics", wrap=_wrap)


def register_metric(name: str, *, higher_is_better: bool, range: tuple[float, float], kind: str = "mean",  # noqa: A002
                    needs: Iterable[str] = (), head: str = "", unit: str = "", digits: int = 4,
                    tolerance: float = 0.01, description: str = "", order: float = 1000.0,
                    areas_prefix: str | None = None) -> Callable:
    """Decorator registering ``compute(batch, env)`` as metric ``name`` (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"metric {name}: kind {kind!r}, expected one of {KINDS}")
    unknown = [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"metric {name}: unknown need {unknown[0]!r} (known: {', '.join(NEEDS)})")
    low, high = (float(v) for v in range)
    if not low < high or math.isnan(low) or math.isnan(high):
        raise ValueError(f"metric {name}: range {range} is not (low, high) with low < high")

    def deco(fn: Callable) -> Callable:
        spec = MetricSpec(name, fn, bool(higher_is_better), (low, high), kind, tuple(needs), head, unit, digits,
                          float(tolerance), description or (fn.__doc__ or "").strip().split("\n")[0], areas_prefix)
        METRICS.register(name, spec, order)
        fn.metric_spec = spec
        return fn

    return deco


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)


def metric_specs(names: Iterable[str]) -> tuple[MetricSpec, ...]:
    """The specs of ``names`` (unknown names fail with the close matches), in the order given, without repeats."""
    specs: dict[str, MetricSpec] = {}
    for n in dict.fromkeys(names):
        spec = METRICS.get(n)
        if spec.name in specs:
            raise BenchError(f"metrics: {n!r} is metric {spec.name!r}, which the list already names; name each once")
        specs[spec.name] = spec
    return tuple(specs.values())


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` in the registry's order (built-ins first, as registered), unknown names last, alphabetically."""
    return sorted(set(names), key=METRICS.order)


def metric_names_from(text: Any, where: str) -> tuple[str, ...]:
    """A grid file's or ``--set``'s ``metrics`` (a list of names), each registered; one line naming ``where``."""
    if isinstance(text, str):
        text = [text]
    if not isinstance(text, list) or not text or not all(isinstance(n, str) for n in text):
        raise BenchError(f"{where}: metrics must be a non-empty list of metric names, e.g. [\"psnr\", \"ms_ssim\"]")
    metric_specs(text)  # every name registered, none twice under two names
    return tuple(dict.fromkeys(text))
