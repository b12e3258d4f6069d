"""Every aten operation that may run while a cell trains in exact arithmetic (``bench.base.exact``), why each gives the
same bits on every machine, and a dispatcher trace that holds a training run to that list.

``ExactTrace`` sees every aten call below Python (``TorchDispatchMode``). An operation outside the classes below
(a ``sqrt``, ``exp``, ``log``, ``randn``, a fused multiply-add through ``alpha``, a reduction of unrounded floats) is
recorded in ``unexpected``; with ``check=True`` every call of an ``IEEE`` operation on floating tensors is computed
again by numpy (whose add, subtract, multiply, divide and conversions are the processor's IEEE 754 instructions)
and any bit that differs is recorded in ``mismatches``; with ``hashes=True`` each call's outputs are hashed
(``bench.benchmarks.op_hashes`` compares those sequences between environments and names the first that differs).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# No arithmetic: views, copies, layout, creation, integer draws and comparisons (exact by definition).
MOVEMENT = frozenset({
    "_local_scalar_dense", "_record_function_enter_new", "_record_function_exit", "_cuda_version", "alias",
    "as_strided", "cat", "clone", "contiguous", "detach", "empty", "empty_like", "empty_strided", "eq", "expand",
    "fill_", "flip", "full", "ge", "gt", "le", "lift_fresh", "lt", "ne", "new_empty", "new_zeros", "ones_like",
    "permute", "pixel_shuffle", "pixel_unshuffle", "promote_types", "repeat_interleave", "replication_pad2d",
    "scalar_tensor", "select", "slice", "slice_scatter", "split", "squeeze", "stack", "t", "transpose", "unbind",
    "unsqueeze", "view", "where", "zero_", "zeros", "zeros_like", "randint", "rand", "arange", "frexp", "amax",
    "_unsafe_view", "reshape", "index_select", "masked_fill", "masked_fill_", "slice_backward", "select_backward",
})
# rand: an integer times a power of two (float32: 24 bits, float64: 53 bits); arange: integers here; frexp and amax:
# exponent and maximum, no rounding.

# One correctly rounded IEEE 754 operation per element (or a sign, an absolute value, a rounding to an integer):
# checked bit for bit against numpy by ``ExactTrace(check=True)``.
IEEE = frozenset({"add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "abs", "sgn",
                  "relu", "relu_", "threshold_backward", "round", "round_", "pow", "_to_copy", "copy_"})

# Sums whose terms are integers times one power of two, below 2^53 in all (bench.base.exact puts them on that grid):
# exact in float64 in any order.
EXACT_SUMS = frozenset({"convolution", "convolution_backward", "sum"})

# Reductions of unrounded floats whose value no weight depends on: the loss's mean (logged and checked for
# finiteness; its gradient is the output gradient divided by the count, an IEEE division).
VALUE_ONLY = frozenset({"mean"})

ALLOWED = MOVEMENT | IEEE | EXACT_SUMS | VALUE_ONLY


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().contiguous().numpy()


def _operand(a, dtype: np.dtype):
    """A tensor or Python number as numpy of the operation's dtype (PyTorch computes float32 ops in float32, a Python
    scalar cast to it)."""
    return _np(a).astype(dtype) if isinstance(a, torch.Tensor) else np.asarray(a).astype(dtype)


def _reference(name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> np.ndarray | None | str:
    """numpy's IEEE result of ``name`` on the call's inputs (inputs copied before in-place calls), None when the
    call is not a floating IEEE operation to check, or a reason string when the call is not allowed at all."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return None
    dt = torch.empty(0, dtype=out.dtype).numpy().dtype
    if name in ("add", "add_", "sub", "sub_", "rsub") and kwargs.get("alpha", args[2] if len(args) > 2 else 1) != 1:
        return "alpha != 1 (a multiply-add, fused on some instruction sets)"
    a = args[0]
    if name in ("add", "add_"):
        return _operand(a, dt) + _operand(args[1], dt)
    if name in ("sub", "sub_"):
        return _operand(a, dt) - _operand(args[1], dt)
    if name == "rsub":
        return _operand(args[1], dt) - _operand(a, dt)
    if name in ("mul", "mul_"):
        return _operand(a, dt) * _operand(args[1], dt)
    if name in ("div", "div_"):
        if kwargs.get("rounding_mode") is not None:
            return "div with a rounding mode"
        return _operand(a, dt) / _operand(args[1], dt)
    if name == "neg":
        return -_operand(a, dt)
    if name == "abs":
        return np.abs(_operand(a, dt))
    if name == "pow":
        if not (len(args) > 1 and not isinstance(args[1], torch.Tensor) and args[1] == 2):
            return f"pow with exponent {args[1] if len(args) > 1 else '?'} (only squares are a single product)"
        x = _operand(a, dt)
        return x * x
    if name in ("_to_copy", "copy_"):
        src = args[1] if name == "copy_" else a
        return _operand(src, dt) if isinstance(src, torch.Tensor) and src.is_floating_point() else None
    return None  # sgn, relu, threshold_backward, round: exact by definition


def _exact_sum(args: tuple, kwargs: dict) -> np.ndarray:
    """The correctly rounded sum (``math.fsum``) over the call's dimensions: what any order of summation gives
    when the terms are on a grid whose exact sum is representable."""
    import math

    x = _np(args[0]).astype(np.float64)
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    dims = tuple(range(x.ndim)) if dims is None or dims == [] else tuple(d % x.ndim for d in dims)
    kept = [d for d in range(x.ndim) if d not in dims]
    rows = np.transpose(x, kept + list(dims)).reshape(int(np.prod([x.shape[d] for d in kept], dtype=np.int64)), -1)
    sums = np.array([math.fsum(r) for r in rows]).reshape([x.shape[d] for d in kept])
    keepdim = (args[2] if len(args) > 2 else kwargs.get("keepdim", False))
    return np.expand_dims(sums, dims) if keepdim else sums


@dataclass
class Record:
    name: str
    dtypes: str
    digest: str = ""


@dataclass
class ExactTrace(TorchDispatchMode):
    """Run training inside ``with ExactTrace(...) as trace:``; then ``trace.unexpected`` ({op: count}),
    ``trace.mismatches`` (op, dtype, elements that differ from numpy's IEEE result), ``trace.counts`` and, with
    ``hashes``, ``trace.records`` (one per call: op, dtypes, sha256 of the outputs)."""

    check: bool = False
    hashes: bool = False
    counts: dict = field(default_factory=dict)
    unexpected: dict = field(default_factory=dict)
    mismatches: list = field(default_factory=list)
    records: list = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        inplace = name.endswith("_") and name in IEEE
        saved = tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args) if (
            self.check and inplace) else args
        out = func(*args, **kwargs)
        tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        dtypes = ",".join(sorted({str(t.dtype).removeprefix("torch.") for t in tensors}))
        key = f"{name}.{func._overloadname}[{dtypes}]"
        self.counts[key] = self.counts.get(key, 0) + 1
        if name not in ALLOWED:
            self.unexpected[key] = self.unexpected.get(key, 0) + 1
        elif self.check and name in IEEE:
            ref = _reference(name, saved, kwargs, out)
            if isinstance(ref, str):
                self.unexpected[f"{key}: {ref}"] = self.unexpected.get(f"{key}: {ref}", 0) + 1
            elif ref is not None:
                self._compare(key, out, ref)
        elif self.check and name == "sum" and out.is_floating_point():
            self._compare(key, out, _exact_sum(args, kwargs))
        if self.hashes:
            h = hashlib.sha256()
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    h.update(_np(t).tobytes())
            self.records.append(Record(name, dtypes, h.hexdigest()[:16]))
        return out

    def _compare(self, key: str, out: torch.Tensor, ref: np.ndarray) -> None:
        got = _np(out)
        want = np.ascontiguousarray(np.broadcast_to(np.asarray(ref).astype(got.dtype), got.shape))
        bad = int(np.count_nonzero(got.view(f"u{got.itemsize}") != want.view(f"u{want.itemsize}")))
        if bad:
            self.mismatches.append((key, bad, got.size))
