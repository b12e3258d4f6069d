"""Image and segmentation metrics: the tensor functions (``functional``), the registry and the built-ins.

``from bench.metrics import psnr, ssim`` are the batched tensor functions the objectives share;
``METRICS`` / ``register_metric`` / ``get_metric`` the registry (``bench.metrics.registry``). Each built-in metric is
one module of ``bench/metrics/builtin/`` (psnr, ssim, ms_ssim, lpips, miou, semantic_consistency).
"""
from bench.base.image_metrics import gaussian_window, ms_ssim, psnr, ssim
from bench.metrics.registry import (
           DEFAULT_METRICS,
           METRICS,
           MetricBatch,
           MetricEnv,
           MetricSpec,
           get_metric,
           metric_specs,
           ordered,
           register_metric,
)

__all__ = ["DEFAULT_METRICS", "METRICS", "MetricBatch", "MetricEnv", "MetricSpec", "gaussian_window", "get_metric",
           "metric_specs", "ms_ssim", "ordered", "psnr", "register_metric", "ssim"]
