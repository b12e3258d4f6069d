"""Exact training arithmetic (bench.exact): exact sums, the float32 result within rounding of PyTorch's, and the same
bits whatever the instruction set, the BLAS branch or the thread count."""
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench.config import TrainConfig
from bench.errors import BenchError
from bench.exact import (
    ExactAdam,
    clip_grad_norm_exact,
    exact_convolutions,
    exact_init,
    operand_bits,
    to_grid,
)

REPO = Path(__file__).resolve().parents[1]


def _grads(fn, *leaves, seed=0):
    out = fn()
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return (out, *torch.autograd.grad(out, leaves, g))


@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, padding=0), dict(padding=2, dilation=2),
                                dict(padding=1, groups=3)])
def test_exact_convolution_is_pytorch_convolution_up_to_rounding(kw):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 13, 11, generator=g, requires_grad=True)
    w = torch.randn(9, 6 // kw.get("groups", 1), 3, 3, generator=g, requires_grad=True)
    b = torch.randn(9, generator=g, requires_grad=True)
    ref = _grads(lambda: F.conv2d(x, w, b, **kw), x, w, b)
    with exact_convolutions():
        got = _grads(lambda: F.conv2d(x, w, b, **kw), x, w, b)
    for r, e in zip(ref, got, strict=True):
        assert e.dtype == torch.float32 and e.shape == r.shape
        assert (e - r).abs().max() <= 2e-6 * r.abs().max()  # 20-23 bits per operand


def test_exact_transposed_convolution_and_modules():
    g = torch.Generator().manual_seed(2)
    up = torch.nn.ConvTranspose2d(4, 3, 2, stride=2)
    x = torch.randn(2, 4, 5, 7, generator=g, requires_grad=True)
    ref = _grads(lambda: up(x), x, up.weight, up.bias)
    with exact_convolutions():
        got = _grads(lambda: up(x), x, up.weight, up.bias)
    for r, e in zip(ref, got, strict=True):
        assert (e - r).abs().max() <= 2e-6 * r.abs().max()


def test_the_sums_are_exact_integers_whatever_their_order():
    """On the grid, every product and partial sum is an integer below 2^53 times one scale: the float64 convolution
    equals an int64 computation of the same sums, bit for bit (so no summation order can change it)."""
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(2, 48, 9, 9, generator=g), torch.randn(16, 48, 3, 3, generator=g) * 1e-3
    bits = operand_bits(48 * 9)
    assert bits == 22
    xq, wq = to_grid(x, bits), to_grid(w, bits)
    sx = 2.0 ** (int(torch.frexp(x.abs().amax()).exponent) - bits)
    sw = 2.0 ** (int(torch.frexp(w.abs().amax()).exponent) - bits)
    xi, wi = (xq / sx).long(), (wq / sw).long()
    assert xi.abs().max() <= 2**bits and wi.abs().max() <= 2**bits
    cols = F.unfold(xi.double(), 3).long()  # (B, 48*9, L): integers, exactly
    exact = torch.einsum("ok,bkl->bol", wi.view(16, -1), cols).view(2, 16, 7, 7)  # int64 arithmetic
    assert exact.abs().max() < 2**53
    assert torch.equal(F.conv2d(xq, wq), exact.double() * (sx * sw))


def test_to_grid_keeps_zeros_and_bounds_the_integers():
    assert torch.equal(to_grid(torch.zeros(3), 10), torch.zeros(3, dtype=torch.float64))
    t = torch.tensor([0.75, -0.3, 1e-9])
    q = to_grid(t, 8)
    assert q[0] == 0.75 and q[2] == 0.0 and abs(float(q[1]) + 0.3) <= 2.0 ** -8


def test_exact_adam_is_adam():
    g = torch.Generator().manual_seed(4)
    a = [torch.randn(50, generator=g, requires_grad=True) for _ in range(2)]
    b = [p.detach().clone().requires_grad_() for p in a]
    ra, rb = torch.optim.Adam(a, lr=1e-2), ExactAdam(b, lr=1e-2)
    for _ in range(20):
        grads = [torch.randn(50, generator=g) for _ in a]
        for p, q, gr in zip(a, b, grads, strict=True):
            p.grad, q.grad = gr.clone(), gr.clone()
        ra.step()
        rb.step()
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6)
    rb.load_state_dict(rb.state_dict())  # a checkpoint round trip keeps it usable


def test_exact_clipping_is_clip_grad_norm():
    g = torch.Generator().manual_seed(5)
    a = [torch.randn(n, generator=g, requires_grad=True) for n in (30, 7)]
    for p in a:
        p.grad = torch.randn(p.shape, generator=g)
    b = [p.detach().clone().requires_grad_() for p in a]
    for p, q in zip(a, b, strict=True):
        q.grad = p.grad.clone()
    ref = torch.nn.utils.clip_grad_norm_(a, 0.5)
    got = clip_grad_norm_exact(b, 0.5)
    assert got == pytest.approx(float(ref), rel=1e-6)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(q.grad, p.grad)


def test_exact_init_draws_pytorchs_distributions():
    torch.manual_seed(0)
    with exact_init():
        conv = torch.nn.Conv2d(32, 64, 3)
        normal = torch.empty(20000).normal_(0.5, 2.0)
    bound = 1 / (32 * 9) ** 0.5  # kaiming_uniform_(a=sqrt(5)) on a 3x3 conv of 32 inputs
    w = conv.weight.detach()
    assert w.abs().max() <= bound and float(w.std()) == pytest.approx(bound / 3**0.5, rel=0.05)
    assert float(normal.mean()) == pytest.approx(0.5, abs=0.05) and float(normal.std()) == pytest.approx(2.0, rel=0.03)
    assert torch.Tensor.uniform_.__name__ == "uniform_"  # restored


def test_exact_arithmetic_refuses_what_it_cannot_guarantee(tmp_path, loss_resources):
    from bench.train import build_for_training, train
    from losses import build_objective

    cfg = TrainConfig(iterations=2, batch=2, crop=32, arithmetic="exact")
    with pytest.raises(ValueError, match="fp32"):
        replace(cfg, precision="bf16")
    images = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    for backbone, objective, name in [("sadnet_small", "l1", "backbone SADNet"),
                                      ("ffdnet_tiny", "d2sm", "objective D2SMObjective")]:
        model = build_for_training(backbone, {}, cfg, 0)
        with pytest.raises(BenchError, match=f"{name} does not declare it"):
            train(model, build_objective(objective, loss_resources), images, cfg, 0, tmp_path / "t.pth",
                  torch.device("cpu"), log=lambda *_: None)
        assert not (tmp_path / "t.pth").exists()


def test_exact_cells_keep_fp32_and_native_cells_keep_their_hash():
    from bench.grids import get_grid

    smoke = get_grid("smoke")
    cells = smoke.cells("synthcity")
    assert {c.train.arithmetic for c in cells} == {"exact"} and {c.train.precision for c in cells} == {"fp32"}
    assert all(c.to_dict()["train"]["arithmetic"] == "exact" for c in cells)
    with pytest.raises(BenchError, match="exact.*fp32 only"):
        smoke.with_precision("bf16")
    native = get_grid("objectives").cells("synthcity")[0]
    assert "arithmetic" not in native.to_dict()["train"]  # hashes of the cells measured before it existed


_TRAIN = """
import hashlib, sys, tempfile, torch
from pathlib import Path
from bench.config import TrainConfig
from bench.streaming import decoded
from bench.paths import cache_root
from bench.suites import SuiteOptions, SynthcitySuite
from bench.train import build_for_training, train
from losses import build_objective
torch.set_num_threads(int(sys.argv[1]))
root = SynthcitySuite(SuiteOptions()).data_root(lambda *_: None)
images = decoded(root, "train", cache_root() / "decoded", lambda *_: None, None).images
out = []
for backbone, objective in [("ffdnet_tiny", "ssim"), ("cbdnet_small", "l1")]:
    cfg = TrainConfig(iterations=12, batch=4, crop=32, lr=1e-3, warmup=0.25, grad_clip=0.2, arithmetic=sys.argv[2])
    model = build_for_training(backbone, {"residual_init": "pytorch"} if backbone.startswith("cbdnet") else {}, cfg, 0)
    with tempfile.TemporaryDirectory() as tmp:
        train(model, build_objective(objective), images, cfg, 0, Path(tmp) / "t.pth", torch.device("cpu"),
              log=lambda *_: None)
    out.append(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()[:16])
print(" ".join(out))
"""

# Stand-ins for other machines: the instruction set PyTorch's own kernels use (a CPU without AVX-512, or without
# AVX2), and the code branch of MKL's BLAS (the SSE2-only "compatible" branch, an SSE4.2 or AVX2 CPU).
MACHINES = [
    {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"},
]


def _weights_hash(env: dict, threads: int, arithmetic: str) -> str:
    full = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                                              "MKL_CBWR")}
    done = subprocess.run([sys.executable, "-c", _TRAIN, str(threads), arithmetic], cwd=REPO, env={**full, **env},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split("\n")[-2]


def test_exact_training_gives_the_same_weights_on_other_instruction_sets_and_thread_counts():
    """12 steps of ffdnet_tiny x ssim and cbdnet_small x l1 from the same seed, in processes that differ in PyTorch's
    kernels (default / AVX2 / this CPU's), MKL's branch and the thread count: identical weights, to the bit. The
    same runs in native arithmetic differ (so these stand-ins do change the arithmetic)."""
    from bench.suites import SuiteOptions, SynthcitySuite

    SynthcitySuite(SuiteOptions()).data_root(lambda *_: None)  # generated once, for every process below
    runs = {json.dumps(env) + f" x{threads}": _weights_hash(env, threads, "exact")
            for env, threads in [({}, 1), ({}, 2), (MACHINES[0], 1), (MACHINES[1], 2)]}
    assert len(set(runs.values())) == 1, runs
    native = {_weights_hash(env, 1, "native") for env in ({}, MACHINES[0])}
    assert len(native) == 2
