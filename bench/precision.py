"""Which precision a cell trains in: fp32, or bf16 autocast with channels_last where the machine runs it faster.

bf16 convolutions are fast only on some hardware: on a CPU with native bf16 (AVX512-BF16, AMX) an autocast +
channels_last training step measured 0.52x the fp32 time; on CPUs without it, 10-25x slower. So "auto" is
decided by measuring, never by reading CPU flags: a short micro-benchmark (a small conv net's forward and
backward, both precisions interleaved) whose verdict is cached per machine and software in
``<cache>/precision/``. On CUDA, "auto" is bf16 where the device supports it.
"""
from __future__ import annotations

import hashlib
import json
import platform
import statistics
import time
from pathlib import Path

from bench.base.atomic import atomic_write_json
from bench.paths import cache_root

# bf16 is chosen when its step takes at most this fraction of the fp32 step (below 1: a gain worth the rounding).
BF16_MAX_RATIO = 0.8


def _cpuinfo(field: str) -> str:
    """The first ``field`` of /proc/cpuinfo ("" where there is none, as off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def machine_key() -> str:
    """What the verdict depends on: processor, its instruction sets and torch's version (not the thread count:
    every command on the machine must decide alike, and the measurement runs on one thread)."""
    import torch

    text = json.dumps([cpu_name(), _cpuinfo("flags"), torch.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def measure_cpu(reps: int = 5) -> dict:
    """Median seconds of one training step of a small conv net (8 crops of 64², 48 channels) in fp32 and in
    bf16 autocast + channels_last, interleaved so that load from elsewhere falls on both alike."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(8, 13, 32, 32, generator=gen)
    net = nn.Sequential(nn.Conv2d(13, 48, 3, padding=1), nn.ReLU(), nn.Conv2d(48, 48, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(48, 48, 3, padding=1), nn.ReLU(), nn.Conv2d(48, 12, 3, padding=1))

    def step(bf16: bool) -> float:
        layout = torch.channels_last if bf16 else torch.contiguous_format
        net.to(memory_format=layout)
        inp = x.to(memory_format=layout)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = net(inp).float().abs().mean()
        loss.backward()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the grids' workers run so, and a busy machine does not skew it
    try:
        for _ in range(2):  # warm-up: oneDNN builds its kernels on the first calls
            step(False), step(True)
        for _ in range(reps):
            times["fp32"].append(step(False))
            times["bf16"].append(step(True))
    finally:
        torch.set_num_threads(threads)
    fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
    return {"fp32_s": fp32, "bf16_s": bf16, "ratio": bf16 / fp32}


def auto_precision(device: str = "cpu", cache: Path | None = None) -> str:
    """"bf16" or "fp32" for ``device``: CUDA by its capability, CPU by the cached micro-benchmark."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            from bench.base.errors import BenchError

            raise BenchError(f"--precision auto for {device} is decided where CUDA is visible, not on this host; "
                             "pass --precision bf16 or fp32 to submit from here")
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    path = (cache or cache_root()) / "precision" / f"cpu-{machine_key()}.json"
    try:
        cached = json.loads(path.read_text())["precision"]
        if cached in ("bf16", "fp32"):
            return cached
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or damaged (or another value): measured again and rewritten
    m = measure_cpu()
    verdict = "bf16" if m["ratio"] <= BF16_MAX_RATIO else "fp32"
    try:
        atomic_write_json(path, {"precision": verdict, "cpu": cpu_name(), "torch": torch.__version__,
                                 "threads": 1, "max_ratio": BF16_MAX_RATIO, **m})
    except OSError:  # a read-only cache: the verdict is measured again next time
        pass
    return verdict


def strict_fp32() -> None:
    """fp32 means fp32 on a GPU too: no TF32 in cuDNN convolutions or matrix products (PyTorch's default lets
    cuDNN use TF32, 10 mantissa bits; a 1200-step smoke cell then moved 0.75 dB on an H100). bf16 cells get
    their speed from autocast instead."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def resolve(precision: str, device: str = "cpu") -> str:
    """A cell's precision as trained: "fp32" and "bf16" as they are, "auto" decided for ``device``."""
    return auto_precision(device) if precision == "auto" else precision
