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
- **Adam** is written as separate IEEE operations (each multiply, add, divide and square root is correctly rounded
  on every machine; PyTorch's fused ``lerp``/``addcmul`` kernels contract to multiply-adds on some instruction sets
  and not on others), and the **gradient norm** for clipping is an exact float64 sum of squares on such a grid.
- **Random draws** (weight initialisation, training noise) come from float64 samplers rounded to float32 (PyTorch's
  float32 normal sampler has an AVX2 path that rounds differently from its scalar one).

Everything else in the supported backbones and objectives is data movement (padding, pixel shuffles,
concatenation), an elementwise IEEE operation, or a mean whose gradient is a division. A backbone or objective
says it is built only from such operations with ``exact_arithmetic = True`` (``tests/test_exact.py`` verifies the
built-in ones on different instruction sets and thread counts); training refuses "exact" for the others.

The operands keep 19-24 bits relative to their tensor's largest magnitude (bf16 keeps 8), so the networks train
as in float32; a step costs 5-8x a native float32 step on a CPU (float64 products, no oneDNN; measured by
``bench.benchmarks.exact_cost``), which is why only the smoke grid's small network trains so.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from bench.errors import BenchError

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


_EXACT = {F.conv2d: _conv2d, torch.conv2d: _conv2d, F.conv_transpose2d: _conv_transpose2d,
          torch.conv_transpose2d: _conv_transpose2d}


class _ExactConvolutions(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        impl = _EXACT.get(func)
        return impl(*args, **(kwargs or {})) if impl is not None else func(*args, **(kwargs or {}))


@contextlib.contextmanager
def exact_convolutions() -> Iterator[None]:
    """Every 2-D convolution called inside (``nn.Conv2d``, ``nn.ConvTranspose2d``, ``F.conv2d``) computes its
    forward and, later, its gradients as exact sums (``_ExactConvolution``)."""
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
    """Standard normal float32 samples drawn in float64 and rounded (the same bits on every instruction set)."""
    dev = device if device is not None else (generator.device if generator is not None else None)
    return torch.randn(shape, generator=generator, dtype=torch.float64, device=dev).float()


class ExactAdam(torch.optim.Optimizer):
    """Adam (Kingma & Ba 2015; PyTorch's defaults: bias-corrected moments, eps added to sqrt(v)/sqrt(1 - b2^t))
    with every update a separate IEEE operation, so that it rounds alike on every machine."""

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
                t = float(state["step"])
                g, m, v = p.grad, state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(g.mul(1.0 - b1))
                v.mul_(b2).add_(g.mul(g).mul_(1.0 - b2))
                denom = v.sqrt().div_(math.sqrt(1.0 - b2**t)).add_(group["eps"])
                p.sub_(m.div(denom).mul_(group["lr"] / (1.0 - b1**t)))
        return None


def clip_grad_norm_exact(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> float:
    """Scale the gradients so that their global L2 norm is at most ``max_norm`` (as ``clip_grad_norm_``); the norm
    is an exact float64 sum of the squares on one fixed-point grid. Returns the norm before clipping."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    squares = [g.double().square() for g in grads]  # exact: a float32 square has at most 48 bits
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


def unsupported(model: torch.nn.Module, objective: torch.nn.Module) -> list[str]:
    """The names of the backbone/objective classes that do not declare ``exact_arithmetic``."""
    return [f"{kind} {type(m).__name__}" for kind, m in (("backbone", model), ("objective", objective))
            if not getattr(m, "exact_arithmetic", False)]
