"""What a results file records about the software and machine that produced it."""
from __future__ import annotations

import platform
import resource
import subprocess
from importlib import metadata

from bench.paths import REPO_ROOT

PACKAGES = ("torch", "torchvision", "numpy", "mmsegmentation", "mmengine", "mmcv-lite", "mmcv", "opencv-python")


def git_sha() -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def environment(device: str) -> dict:
    import torch

    return {"versions": versions(), "git_sha": git_sha(), "host": platform.node(), "platform": platform.platform(),
            "device": device, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None,
            **({"tf32": torch.backends.cudnn.allow_tf32} if device.startswith("cuda") else {})}
