import os

import pytest
import torch

# one thread per pytest-xdist worker (they share the cores), else up to 2
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the user's cache (and so never reuse or clobber real weights)."""
    monkeypatch.setenv("D2SM_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _registries_restored():
    """What a test registers (a plugin it imports) is gone after it: every test sees the built-in registries."""
    from bench import plugins
    from bench.degradations import DEGRADATIONS
    from bench.grids import GRIDS
    from bench.metrics import METRICS
    from bench.suites import SUITES
    from losses.registry import OBJECTIVES
    from models.registry import BACKBONES

    registries = (GRIDS, SUITES, OBJECTIVES, BACKBONES, METRICS, DEGRADATIONS)
    for r in registries:
        r.load()  # built-ins first: their modules register only the first time they are imported
    saved = [r.snapshot() for r in registries], plugins.snapshot()
    yield
    for r, snap in zip(registries, saved[0], strict=True):
        r.restore(snap)
    plugins.restore(saved[1])


@pytest.fixture(scope="session")
def real_images():
    """Three natural RGB images shipped with scikit-image, float64 in [0, 1], cropped to 128x160."""
    from skimage import data

    return [im[:128, :160].astype("float64") / 255.0 for im in (data.astronaut(), data.coffee(), data.chelsea())]


@pytest.fixture(scope="session")
def loss_resources():
    """Real loss networks with seeded random weights: a narrow VGG19, LPIPS's formula on it, the embedded
    segmenter's mmseg model (random init, frozen)."""
    from bench.suites import EMBEDDED_SEG_CONFIG
    from losses.lpips_distance import LPIPSOnFeatures
    from losses.registry import Resources
    from losses.vgg import VGGFeatures
    from seg_eval.segmenter import Segmenter

    torch.manual_seed(0)
    vgg = VGGFeatures(width=0.125)
    for m in vgg.features:  # He init without biases: deep random features that still tell images apart
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    vgg.freeze()
    seg = Segmenter(EMBEDDED_SEG_CONFIG, None).freeze()
    return Resources(features=lambda: vgg, lpips=lambda: LPIPSOnFeatures(vgg), segmenter=lambda: seg)
