"""Exact training arithmetic (bench.base.exact): exact sums, the float32 result within rounding of PyTorch's, and the same
bits whatever the instruction set, the BLAS branch or the thread count."""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.base.errors import BenchError
from bench.base.exact import (
    ExactAdam,
    clip_grad_norm_exact,
    exact_convolutions,
    exact_init,
    operand_bits,
    to_grid,
)
from bench.config import TrainConfig

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


BASELINE = REPO / "results" / "baselines" / "smoke.json"

# Other machines as this one can act them: MKL's code branches (its SSE2-only "compatible" one, AVX2, AVX-512; MKL
# runs Intel's AVX2/AVX-512 branches only on Intel CPUs, so on others these fall back), PyTorch's kernels for other
# instruction sets, oneDNN's.
MACHINES = [
    {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    {"MKL_CBWR": "AVX512", "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
]
_MACHINE_KEYS = {k for m in MACHINES for k in m}


def _selftest(env: dict, threads: int, arithmetic: str = "exact") -> dict:
    full = {k: v for k, v in os.environ.items() if k not in _MACHINE_KEYS}
    done = subprocess.run([sys.executable, "-m", "bench.exact_selftest", "--threads", str(threads), "--arithmetic",
                           arithmetic], cwd=REPO, env={**full, **env}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _committed() -> dict:
    from bench.exact_selftest import SECTION

    return json.loads(BASELINE.read_text())[SECTION]["fingerprints"]


def test_exact_training_gives_the_committed_weights_on_other_instruction_sets_and_thread_counts():
    """12 steps of ffdnet_tiny x ssim and cbdnet_small x l1 (+ noise terms) from the same seed, in processes that
    differ in MKL's branch, PyTorch's kernels and the thread count: the weights committed in the smoke baseline (from
    another machine), to the bit, after steps 1, 10 and 12. The same runs in native arithmetic differ (so these
    stand-ins do change the arithmetic)."""
    from bench.exact_selftest import compare

    committed = _committed()
    runs = {json.dumps(env) + f" x{threads}": _selftest(env, threads)
            for env, threads in [({}, 1), ({}, 2), (MACHINES[0], 1), (MACHINES[1], 2), (MACHINES[2], 1)]}
    assert {k: compare(v, committed) for k, v in runs.items()} == {k: [] for k in runs}
    native = {json.dumps(_selftest(env, 1, "native"), sort_keys=True) for env in ({}, MACHINES[0])}
    assert len(native) == 2


def test_the_committed_fingerprints_are_reproduced_here_in_process():
    """The quick form of the above that ``bench doctor`` runs; a changed weight is named with its first step."""
    from bench.exact_selftest import compare, run

    committed = _committed()
    found = run()
    assert compare(found, committed) == []
    pair = next(iter(committed))
    other = {**found, pair: {**found[pair], "10": "0" * 64, "12": "0" * 64}}
    assert compare(other, committed) == [f"{pair}: the weights differ from the committed ones from step 10"]


def test_doctor_says_whether_exact_arithmetic_reproduces_the_committed_weights(tmp_path):
    from bench.doctor import CheckFailed, exact_arithmetic
    from bench.exact_selftest import SECTION

    assert "reproduce the committed weights bit for bit" in exact_arithmetic(BASELINE)
    broken = json.loads(BASELINE.read_text())
    pair = next(iter(broken[SECTION]["fingerprints"]))
    broken[SECTION]["fingerprints"][pair]["1"] = "0" * 64
    (tmp_path / "smoke.json").write_text(json.dumps(broken))
    with pytest.raises(CheckFailed, match=re.escape(f"{pair}: the weights differ from the committed ones from step 1: exact")):
        exact_arithmetic(tmp_path / "smoke.json")
    assert exact_arithmetic(tmp_path / "absent.json").startswith("not checked")


# ---- every operation of the exact path, against IEEE 754 references ----------------------------------------------

def _float32_samples() -> np.ndarray:
    """Every float32 mantissa at both exponent parities ([1, 2) and [2, 4)), every subnormal exponent's extremes and
    2^20 random subnormal and 2^22 random normal bit patterns of both signs."""
    rng = np.random.default_rng(0)
    mant = np.arange(2**23, dtype=np.uint32)
    parts = [mant | (127 << 23), mant | (128 << 23),
             rng.integers(1, 2**23, 2**20, dtype=np.uint32),  # subnormals
             rng.integers(1 << 23, 255 << 23, 2**22, dtype=np.uint32),  # normals of every exponent
             np.array([1, 2**23 - 1, 2**23, 0x7F7FFFFF], dtype=np.uint32)]
    return np.concatenate(parts).view(np.float32)


def test_ieee_sqrt_is_the_correctly_rounded_square_root_of_every_sample():
    """The reference is the float64 square root rounded once to float32, which is the correctly rounded float32
    square root (the exact root of a float32 is never within 2^-39 relative of a float32 rounding midpoint)."""
    from bench.base.exact import ieee_sqrt

    x = _float32_samples()
    want = np.sqrt(x.astype(np.float64)).astype(np.float32)
    got = ieee_sqrt(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))
    d = torch.from_numpy(np.random.default_rng(1).uniform(0, 1e6, 10000))
    assert [float(v) for v in ieee_sqrt(d)] == [math.sqrt(float(v)) for v in d]  # C's sqrt: correctly rounded


def test_exact_adams_step_is_ieee_arithmetic_bit_for_bit():
    """One ExactAdam step over 2^24 second moments (every mantissa in [1, 4), scaled), against the same update in
    numpy's IEEE float32 operations. It fails if the step takes torch.sqrt (MKL VML's vsSqrt on x86 CPUs: not
    correctly rounded on MKL's default branches), torch's pow or a fused multiply-add."""
    from bench.base.exact import power

    mant = np.arange(2**23, dtype=np.uint32)
    v = np.concatenate([mant | (127 << 23), mant | (128 << 23)]).view(np.float32) * np.float32(1e-6)
    rng = np.random.default_rng(2)
    m = rng.standard_normal(v.size).astype(np.float32) * np.float32(1e-3)
    g = rng.standard_normal(v.size).astype(np.float32) * np.float32(1e-3)
    p0 = rng.standard_normal(v.size).astype(np.float32)
    lr, (b1, b2), eps, step = 1e-3, (0.9, 0.999), 1e-8, 7
    param = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = ExactAdam([param], lr=lr, betas=(b1, b2), eps=eps)
    opt.state[param] = {"step": torch.tensor(float(step - 1), dtype=torch.float64),
                        "exp_avg": torch.from_numpy(m.copy()), "exp_avg_sq": torch.from_numpy(v.copy())}
    param.grad = torch.from_numpy(g.copy())
    opt.step()
    f = np.float32
    m1 = m * f(b1) + g * f(1 - b1)
    v1 = v * f(b2) + (g * g) * f(1 - b2)
    denom = np.sqrt(v1) / f(math.sqrt(1 - power(b2, step))) + f(eps)
    want = p0 - (m1 / denom) * f(lr / (1 - power(b1, step)))
    assert np.array_equal(param.detach().numpy().view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_torchs_elementwise_float32_ops_are_ieee_on_every_sample(op):
    """The four operations every other exact computation is made of, as PyTorch runs them here (vectorised kernels
    of this CPU's instruction set), bit for bit against numpy's IEEE ones, subnormals included."""
    x = _float32_samples()
    y = np.random.default_rng(3).permutation(x)
    got = getattr(torch, op)(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    with np.errstate(all="ignore"):  # overflow to infinity is part of IEEE arithmetic
        want = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op](x, y)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    wide = x.astype(np.float64) * 1.0000001  # float64 -> float32 conversion: correctly rounded
    with np.errstate(all="ignore"):  # the largest samples round to infinity, as IEEE says
        assert np.array_equal(torch.from_numpy(wide).float().numpy().view(np.uint32),
                              wide.astype(np.float32).view(np.uint32))


def _log_scalar(u: float) -> float:
    from bench.base.exact import _ODD_RECIPROCALS, LN2_HI, LN2_LO, _horner

    m, e = math.frexp(u)
    if m < math.sqrt(0.5):
        m, e = m * 2.0, e - 1
    s = (m - 1.0) / (m + 1.0)
    return float(e) * LN2_HI + (s * _horner(_ODD_RECIPROCALS, s * s) * 2.0 + float(e) * LN2_LO)


def _cos_scalar(u: float) -> float:
    from bench.base.exact import _INV_FACTORIALS, _horner

    a = abs(u - round(u))
    negate = a > 0.25
    a = 0.5 - a if negate else a
    as_sine = a > 0.125
    x = (0.25 - a if as_sine else a) * (2.0 * math.pi)
    out = x * _horner(_INV_FACTORIALS[1::2], -(x * x)) if as_sine else _horner(_INV_FACTORIALS[0::2], -(x * x))
    return -out if negate else out


def test_log_and_cos_are_plain_ieee_arithmetic_and_accurate():
    """The tensor versions equal the same formulas in Python floats (IEEE binary64, one rounding per operation) bit
    for bit, so no library function is in them; and they are within 5 units in the last place of numpy's."""
    from bench.base.exact import cos_2pi, exp_scalar, log_unit

    rng = np.random.default_rng(4)
    u = np.concatenate([rng.uniform(0, 1, 3000), 2.0 ** -rng.uniform(0, 1070, 1000), [1.0, 0.5, 2**-1074, 0.25]])
    logs, coss = log_unit(torch.from_numpy(u)).tolist(), cos_2pi(torch.from_numpy(u)).tolist()
    assert logs == [_log_scalar(float(v)) for v in u] and coss == [_cos_scalar(float(v)) for v in u]
    assert np.allclose(logs, np.log(u), rtol=1.2e-15, atol=0) and np.allclose(coss, np.cos(2 * np.pi * u), atol=2e-15)
    xs = np.linspace(-700, 700, 5001)
    assert max(abs(exp_scalar(float(x)) / math.exp(x) - 1) for x in xs) < 4e-16


def test_exact_normals_are_standard_normal_and_exact_windows_match_the_native_one():
    from scipy import stats

    from bench.base.exact import exact_randn, gaussian_window
    from bench.metrics import gaussian_window as native_window

    z = exact_randn((400_000,), torch.Generator().manual_seed(0))
    assert z.dtype == torch.float32 and stats.kstest(z.numpy(), "norm").pvalue > 0.01
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    w = gaussian_window(11, 1.5)
    assert math.fsum(w.tolist()) == pytest.approx(1.0, abs=1e-15)
    assert (w.float() - native_window(11, 1.5)).abs().max() <= 6e-8  # one float32 rounding apart


def _trace(backbone: str, objective: str, okw: dict, check: bool = True):
    from bench.exact_ops import ExactTrace
    from bench.exact_selftest import images, recipe
    from bench.train import build_for_training, train
    from losses import build_objective

    cfg = replace(recipe(), iterations=3)
    with ExactTrace(check=check) as trace:
        model = build_for_training(backbone, {}, cfg, 0)
        train(model, build_objective(objective, **okw), images(), cfg, 0, Path(tempfile.mkdtemp()) / "t.pth",
              torch.device("cpu"), log=lambda *_: None)
    return trace


@pytest.mark.parametrize("backbone,objective,okw", [
    ("ffdnet_tiny", "ssim", {}), ("ffdnet_small", "l1", {}),
    ("cbdnet_small", "l1", {"asymmetric_weight": 0.5, "tv_weight": 0.05}), ("cbdnet_small", "ssim", {})])
def test_exact_training_calls_only_operations_that_are_exact_everywhere(backbone, objective, okw):
    """Every aten call of 3 training steps (warm-up, cosine, clipping, moving average) is in bench.exact_ops' classes,
    and every elementwise IEEE call and every sum equals numpy's IEEE result / math.fsum's exact sum, bit for bit."""
    trace = _trace(backbone, objective, okw)
    assert trace.unexpected == {} and trace.mismatches == [], (trace.unexpected, trace.mismatches)
    assert any(k.startswith("convolution_backward") for k in trace.counts)


def test_the_trace_catches_what_is_not_exact():
    from bench.exact_ops import ExactTrace

    x = torch.rand(64) + 0.5
    with ExactTrace(check=True) as trace:
        x.sqrt()
        torch.exp(x)
        torch.randn(4)
        x.add(x, alpha=0.5)
        x.pow(3)
    names = " ".join(trace.unexpected)
    for op in ("sqrt", "exp", "randn", "alpha != 1", "pow with exponent 3"):
        assert op in names, (op, names)
    # a sum is checked against math.fsum's exact sum: a result one rounding away is a mismatch
    from bench.exact_ops import _exact_sum

    terms = torch.tensor([[1e16, 1.0, -1e16, 1.0], [0.5, 0.25, 0.125, 1.0]], dtype=torch.float64)
    assert _exact_sum((terms, [1]), {}).tolist() == [2.0, 1.875]
    trace._compare("sum.dim_IntList[float64]", torch.tensor([1.0, 1.875], dtype=torch.float64),
                   _exact_sum((terms, [1]), {}))
    assert trace.mismatches == [("sum.dim_IntList[float64]", 1, 2)]
