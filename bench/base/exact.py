"""Exact arithmetic for training: a training run that gives the same bits on every CPU, thread count and BLAS.

Training amplifies rounding: two runs whose first steps differ in the last bit of one weight have decorrelated
after about 100 Adam steps, and end a tenth of a dB apart, as two seeds do (``bench.benchmarks.twin_runs``
measures it). Another CPU, another thread count or another BLAS kernel rounds its sums in another order, so a
trained cell can be checked against a number written on another machine only within that chaos. With
``TrainConfig.arithmetic = "exact"`` nothing in a training step depends on the order of a sum or on the machine's
instructions:

- **Convolutions** (forward, input gradient, weight gradient) round their two operands to a per-tensor fixed-point
  grid: a power-of-two scale and ``b`` bits, with ``2 b + ceil(log2 K) <= 53`` for a reduction of ``K`` products
  (22 bits for a 3x3 convolution of 48 channels). Every product and every partial sum is then an integer below 2^53
  times one scale, so float64 computes it exactly in any order: vector width, BLAS blocking and threads cannot
  change a bit of it. The exact result is rounded once to float32. The bias gradient is such a sum too.
- **Adam** is written as separate IEEE operations: each add, multiply and divide is one correctly rounded IEEE 754
  operation on every machine, and PyTorch's fused ``lerp``/``addcmul`` kernels, which contract to multiply-adds on
  some instruction sets and not on others, are not used. Its **square root** is ``ieee_sqrt``: on a CPU numpy's
  ``sqrt``, the processor's IEEE square-root instruction (``sqrtps``/``sqrtpd``, ``fsqrt`` on ARM), which IEEE 754
  requires correctly rounded. ``torch.sqrt`` is not used: in PyTorch's CPU builds with MKL it is MKL VML's
  ``vsSqrt``, which is *not* correctly rounded and rounds differently on each of MKL's code branches (AVX-512, AVX2,
  SSE; measured: 98,955 of the 16.8 M float32 mantissas in [1, 4) off by one unit in the last place on the AVX-512
  branch, 17 % on the SSE branch), and MKL picks its branch by the CPU's maker and model. Bias corrections use
  ``power`` (repeated multiplication) instead of ``**`` (the C library's ``pow``, which may differ between C
  libraries). The **gradient norm** for clipping is an exact float64 sum of squares on such a grid.
- **Random draws** (weight initialisation, training noise) start from PyTorch's uniform generator, whose float64 and
  float32 draws are integers times a power of two (exact on every machine). Normal samples are ``exact_randn``'s
  Box-Muller transform, with ``log`` and ``cos`` as polynomials of separate IEEE operations (``log_unit``,
  ``cos_2pi``) and ``ieee_sqrt``: PyTorch's own normal samplers call the C library's or SLEEF's ``log``/``cos``/
  ``sin``, whose roundings may differ between libraries and instruction sets.
- **Constants** computed from transcendental functions (SSIM's Gaussian window, a cosine learning-rate schedule) use
  ``exp_scalar``/``cos_2pi`` and ``math.fsum``, never ``torch.exp`` (MKL VML again) or the C library.
- **Average pooling** (CBDNet's 2x2 downsampling) is an exact float64 sum on a grid, divided once.

Everything else in the supported backbones and objectives is data movement (padding, pixel shuffles,
concatenation), an elementwise IEEE operation (add, subtract, multiply, divide, negate, compare, ReLU, a square as a
product), a conversion between float64 and float32 (correctly rounded), or a mean whose gradient is a division (its
forward value is only logged; no weight depends on the order of its sum). ``bench.exact_ops`` lists every aten
operation that may run on the exact path and why it is exact; ``tests/test_exact.py`` traces training of every
built-in pair under PyTorch's dispatcher, fails on any other operation, and checks every elementwise IEEE call bit
for bit against numpy. What is guaranteed: the same bits wherever the processor implements IEEE 754 binary32/
binary64 arithmetic with round-to-nearest-even and no flush-to-zero, whatever its vector width, MKL branch, BLAS
blocking or thread count. What is not: another PyTorch or numpy version may implement an operation differently
(the committed fingerprints in ``results/baselines/smoke.json`` say so where it happens), and GPUs are not covered
(their convolutions are exact, but nothing else here is traced on them). A backbone or objective says it is built
only from such operations with ``exact_arithmetic = True``; training refuses "exact" for the others.

The operands keep 19-24 bits relative to their tensor's largest magnitude (bf16 keeps 8), so the networks train
as in float32; a step costs 5-8x a native float32 step on a CPU (float64 products, no oneDNN; measured by
``bench.benchmarks.exact_cost``), which is why only the smoke grid's small network trains so.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from bench.base.errors import BenchError

MANTISSA = 53  # float64: every integer up to 2^53 is exact
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("exact_arithmetic", default=False)


def active() -> bool:
    """True inside ``exact_convolutions()`` (code that builds constants, such as SSIM's window, asks)."""
    return _ACTIVE.get()


def operand_bits(k: int) -> int:
    """Bits per operand so that a sum of ``k`` products of two of them is an integer below 2^53."""
    return (MANTISSA - math.ceil(math.log2(max(int(k), 1)))) // 2


def to_grid(t: torch.Tensor, bits: int) -> torch.Tensor:
    """``t`` in float64, rounded (half to even) to multiples of 2^(e - bits), where 2^e > max |t|: every element
    is an integer of at most ``bits`` bits times that power of two. A tensor of zeros stays zeros."""
    t = t.detach().double()
    peak = t.abs().amax()
    if not bool(peak > 0):
        return t.clone()
    e = int(torch.frexp(peak).exponent)  # peak = m 2^e with 0.5 <= m < 1
    return t.mul(2.0 ** (bits - e)).round_().mul_(2.0 ** (e - bits))


def ieee_sqrt(t: torch.Tensor) -> torch.Tensor:
    """The correctly rounded square root of a float32 or float64 tensor, the same bits on every machine: on a CPU
    numpy's ``sqrt`` (the processor's IEEE 754 square-root instruction), elsewhere ``torch.sqrt`` (CUDA's is
    correctly rounded unless built with fast math). Not differentiable: optimiser and sampler use only."""
    if t.device.type != "cpu":
        return torch.sqrt(t)
    return torch.from_numpy(np.sqrt(t.detach().contiguous().numpy()))


def power(base: float, n: int) -> float:
    """``base ** n`` for an integer n >= 0 by repeated squaring: IEEE multiplications in a fixed order, so the same
    float on every machine (Python's ``**`` calls the C library's ``pow``)."""
    result, factor, n = 1.0, float(base), int(n)
    while n > 0:
        if n & 1:
            result *= factor
        factor *= factor
        n >>= 1
    return result


# Elementary functions as polynomials of IEEE operations (float64): the same bits wherever IEEE 754 holds, accurate
# to a few units in the last place (tests/test_exact.py measures it against numpy).
LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 = hi + lo; k * hi exact for |k| < 2^11
_ODD_RECIPROCALS = [1.0 / (2 * k + 1) for k in range(12)]  # atanh series: 1, 1/3, 1/5, ...
_INV_FACTORIALS = [1.0 / math.factorial(k) for k in range(22)]


def _horner(coefficients: list[float], z):
    """sum c_k z^k, Horner's scheme, one IEEE multiply and one add per coefficient (works on floats and tensors)."""
    acc = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        acc = acc * z + c
    return acc


def log_unit(u: torch.Tensor) -> torch.Tensor:
    """Natural log of a float64 tensor of positive finite values: u = m 2^e with m in [sqrt(1/2), sqrt(2)),
    log m = 2 atanh((m - 1) / (m + 1)) by its series (|s| < 0.172, 12 terms)."""
    m, e = torch.frexp(u)  # u = m 2^e, 0.5 <= m < 1
    low = m < math.sqrt(0.5)
    m = torch.where(low, m * 2.0, m)
    k = e.to(torch.float64) - low.to(torch.float64)
    s = (m - 1.0) / (m + 1.0)
    series = _horner(_ODD_RECIPROCALS, s * s)
    return k * LN2_HI + (s * series * 2.0 + k * LN2_LO)


def cos_2pi(u: torch.Tensor) -> torch.Tensor:
    """cos(2 pi u) of a float64 tensor, by reduction to [0, 1/8] turns and the Taylor series of cos or sin there
    (|x| <= pi/4, 11 terms)."""
    a = (u - torch.round(u)).abs()  # [0, 1/2] turns; cos is even and 1-periodic in u
    negate = a > 0.25
    a = torch.where(negate, 0.5 - a, a)  # cos(2 pi a) = -cos(2 pi (1/2 - a))
    as_sine = a > 0.125
    x = torch.where(as_sine, 0.25 - a, a) * (2.0 * math.pi)  # cos(2 pi a) = sin(2 pi (1/4 - a))
    z = x * x
    cosine = _horner(_INV_FACTORIALS[0::2], -z)  # sum (-1)^k x^2k / (2k)!
    sine = x * _horner(_INV_FACTORIALS[1::2], -z)
    out = torch.where(as_sine, sine, cosine)
    return torch.where(negate, -out, out)


def exp_scalar(x: float) -> float:
    """e^x of a Python float in [-700, 700]: x = k ln 2 + r, |r| <= ln(2)/2, Taylor series of e^r (22 terms),
    scaled by 2^k (exact). Python's float arithmetic is IEEE binary64."""
    k = round(x * 1.4426950408889634)  # 1 / ln 2
    r = (x - k * LN2_HI) - k * LN2_LO
    return math.ldexp(_horner(_INV_FACTORIALS, r), k)


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """(size,) float64 normalised 1-D Gaussian from ``exp_scalar`` and ``math.fsum`` (a correctly rounded sum): the
    same bits on every machine."""
    offsets = [i - (size - 1) / 2 for i in range(size)]
    g = [exp_scalar(-(d * d) / (2.0 * sigma * sigma)) for d in offsets]
    total = math.fsum(g)
    return torch.tensor([v / total for v in g], dtype=torch.float64)


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, list | tuple) else (int(v), int(v))


class _ExactConvolution(torch.autograd.Function):
    """``aten.convolution`` (2-D, plain or transposed) whose three products are exact float64 sums."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
        taps = w.shape[2] * w.shape[3]
        per_output = (w.shape[0] // groups if transposed else w.shape[1]) * taps  # products summed per output
        bits = operand_bits(per_output)
        y = torch.ops.aten.convolution(to_grid(x, bits), to_grid(w, bits), None, stride, padding, dilation,
                                       transposed, output_padding, groups).float()
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, transposed, output_padding, groups)
        ctx.has_bias = b is not None
        return y + b.view(1, -1, 1, 1) if b is not None else y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        stride, padding, dilation, transposed, output_padding, groups = ctx.conf
        gx = gw = gb = None
        taps = w.shape[2] * w.shape[3]
        if ctx.needs_input_grad[0]:  # each input element gathers (output channels per group) x taps products
            bits = operand_bits((w.shape[1] if transposed else w.shape[0] // groups) * taps)
            gx = torch.ops.aten.convolution_backward(
                to_grid(g, bits), x.double(), to_grid(w, bits), None, stride, padding, dilation, transposed,
                output_padding, groups, [True, False, False])[0].float()
        if ctx.needs_input_grad[1]:  # each weight sums over the batch and the larger of the two planes
            bits = operand_bits(x.shape[0] * max(x.shape[2] * x.shape[3], g.shape[2] * g.shape[3]))
            gw = torch.ops.aten.convolution_backward(
                to_grid(g, bits), to_grid(x, bits), w.double(), None, stride, padding, dilation, transposed,
                output_padding, groups, [False, True, False])[1].float()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            n = g.shape[0] * g.shape[2] * g.shape[3]
            gb = to_grid(g, MANTISSA - math.ceil(math.log2(n))).sum((0, 2, 3)).float()
        return gx, gw, gb, None, None, None, None, None, None


def _conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if isinstance(padding, str):
        raise BenchError(f"arithmetic 'exact' supports numeric convolution padding, not {padding!r}")
    return _ExactConvolution.apply(input, weight, bias, _pair(stride), _pair(padding), _pair(dilation), False,
                                   (0, 0), groups)


def _conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _ExactConvolution.apply(input, weight, bias, _pair(stride), _pair(padding), _pair(dilation), True,
                                   _pair(output_padding), groups)


class _ExactAvgPool(torch.autograd.Function):
    """``avg_pool2d(x, k)`` with stride k, no padding: the k x k sums are exact float64 sums on a grid, divided
    once by k^2 and rounded once to float32; the gradient is the output gradient divided by k^2 (exact for k = 2)."""

    @staticmethod
    def forward(ctx, x, k):
        b, c, h, w = x.shape
        oh, ow = h // k, w // k
        grid = to_grid(x[..., :oh * k, :ow * k], MANTISSA - math.ceil(math.log2(k * k)))
        ctx.k, ctx.shape = k, x.shape
        return grid.view(b, c, oh, k, ow, k).sum((3, 5)).div(k * k).float()

    @staticmethod
    def backward(ctx, g):
        k, (b, c, h, w) = ctx.k, ctx.shape
        gx = g.new_zeros((b, c, h, w))
        spread = g.div(k * k).repeat_interleave(k, 2).repeat_interleave(k, 3)
        gx[..., :spread.shape[2], :spread.shape[3]] = spread
        return gx, None


def _avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
    k = _pair(kernel_size)
    if (k[0] != k[1] or _pair(stride if stride is not None else kernel_size) != k or _pair(padding) != (0, 0)
            or ceil_mode or divisor_override is not None or input.dim() != 4):
        raise BenchError("arithmetic 'exact' supports avg_pool2d of square windows with stride = window, no padding")
    return _ExactAvgPool.apply(input, k[0])


_EXACT = {F.conv2d: _conv2d, torch.conv2d: _conv2d, F.conv_transpose2d: _conv_transpose2d,
          torch.conv_transpose2d: _conv_transpose2d, F.avg_pool2d: _avg_pool2d}


class _ExactConvolutions(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        impl = _EXACT.get(func)
        return impl(*args, **(kwargs or {})) if impl is not None else func(*args, **(kwargs or {}))


@contextlib.contextmanager
def exact_convolutions() -> Iterator[None]:
    """Every 2-D convolution called inside (``nn.Conv2d``, ``nn.ConvTranspose2d``, ``F.conv2d``) and every
    ``F.avg_pool2d`` computes its forward and, later, its gradients as exact sums (``_ExactConvolution``,
    ``_ExactAvgPool``)."""
    token = _ACTIVE.set(True)
    try:
        with _ExactConvolutions():
            yield
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def exact_init() -> Iterator[None]:
    """Build a network inside: ``Tensor.uniform_``/``normal_`` (what ``torch.nn.init`` calls) draw in float64 and
    transform with separate operations, rounded once to the tensor's dtype (the float32 kernels fuse the
    transform into a multiply-add on some instruction sets)."""
    uniform, normal = torch.Tensor.uniform_, torch.Tensor.normal_

    def exact_uniform_(self, a=0.0, b=1.0, *, generator=None):
        with torch.no_grad():
            u = torch.rand(self.shape, generator=generator, dtype=torch.float64, device=self.device)
            return self.copy_(u.mul(b - a).add(a))

    def exact_normal_(self, mean=0.0, std=1.0, *, generator=None):
        with torch.no_grad():
            return self.copy_(exact_randn(self.shape, generator, self.device).double().mul(std).add(mean))

    torch.Tensor.uniform_, torch.Tensor.normal_ = exact_uniform_, exact_normal_
    try:
        yield
    finally:
        torch.Tensor.uniform_, torch.Tensor.normal_ = uniform, normal


def exact_randn(shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Standard normal float32 samples, the same bits on every machine: Box-Muller, z = sqrt(-2 log u1) cos(2 pi u2),
    from two float64 uniform draws per sample (u1 = 1 - U in (0, 1]), ``log_unit``, ``cos_2pi`` and ``ieee_sqrt`` in
    float64, rounded once to float32."""
    dev = device if device is not None else (generator.device if generator is not None else None)
    shape = tuple(shape)
    n = math.prod(shape)
    u = torch.rand((2, n), generator=generator, dtype=torch.float64, device=dev)
    radius = ieee_sqrt(log_unit(1.0 - u[0]) * -2.0).to(u.device)
    return (radius * cos_2pi(u[1])).float().view(shape)


class ExactAdam(torch.optim.Optimizer):
    """Adam (Kingma & Ba 2015; PyTorch's defaults: bias-corrected moments, eps added to sqrt(v)/sqrt(1 - b2^t))
    with every update a separate IEEE operation, its square root ``ieee_sqrt`` and its bias corrections ``power``, so
    that it rounds alike on every machine."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = int(state["step"])
                g, m, v = p.grad, state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(g.mul(1.0 - b1))
                v.mul_(b2).add_(g.mul(g).mul_(1.0 - b2))
                denom = ieee_sqrt(v).to(v.device).div_(math.sqrt(1.0 - power(b2, t))).add_(group["eps"])
                p.sub_(m.div(denom).mul_(group["lr"] / (1.0 - power(b1, t))))
        return None


def clip_grad_norm_exact(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> float:
    """Scale the gradients so that their global L2 norm is at most ``max_norm`` (as ``clip_grad_norm_``); the norm
    is an exact float64 sum of the squares on one fixed-point grid. Returns the norm before clipping."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    squares = [g.double() * g.double() for g in grads]  # exact: a float32 square has at most 48 bits
    count = sum(s.numel() for s in squares)
    peak = max(float(s.amax()) for s in squares)
    if peak == 0.0:
        return 0.0
    bits = MANTISSA - math.ceil(math.log2(count))
    scale = 2.0 ** (math.frexp(peak)[1] - bits)
    total = math.sqrt(sum(float(s.div(scale).round_().sum()) for s in squares) * scale)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g.mul_(coef)
    return total


def ema_exact(decay: float):
    """An ``AveragedModel`` ``avg_fn``: ema = decay ema + (1 - decay) weights, as separate operations."""
    def avg(averaged: torch.Tensor, current: torch.Tensor, num_averaged) -> torch.Tensor:
        if int(num_averaged) == 0:
            return current.detach().clone()
        return averaged.mul(decay).add_(current.detach().mul(1.0 - decay))
    return avg


def fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a module's state dict: every entry's name, dtype, shape and bytes, in name order."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fingerprint_steps(iterations: int) -> tuple[int, ...]:
    """The iterations after which exact training records a fingerprint: 1, 10, 100 (those below ``iterations``) and
    the last."""
    return tuple(sorted({s for s in (1, 10, 100) if s < iterations} | {iterations}))


def first_differing_step(found: dict[str, str], committed: dict[str, str]) -> str | None:
    """The first step (in numeric order) of ``committed`` fingerprints whose ``found`` one differs or is absent."""
    return next((s for s in sorted(committed, key=int) if found.get(s) != committed[s]), None)


def unsupported(model: torch.nn.Module, objective: torch.nn.Module) -> list[str]:
    """The names of the backbone/objective classes that do not declare ``exact_arithmetic``."""
    return [f"{kind} {type(m).__name__}" for kind, m in (("backbone", model), ("objective", objective))
            if not getattr(m, "exact_arithmetic", False)]
