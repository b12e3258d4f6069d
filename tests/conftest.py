import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Tests never touch the user's cache (and so never reuse or clobber real weights)."""
    monkeypatch.setenv("D2SM_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="session")
def real_images():
    """Three natural RGB images shipped with scikit-image, float64 in [0, 1], cropped to 128x160."""
    from skimage import data

    return [im[:128, :160].astype("float64") / 255.0 for im in (data.astronaut(), data.coffee(), data.chelsea())]
