"""Checkpoint loading with ``weights_only=True`` and an explicit, narrow allow-list.

mmengine checkpoints carry numpy and mmengine objects in ``meta`` (history buffers, numpy scalars),
which torch >= 2.6 refuses under ``weights_only``. We allow exactly the types such files are known to
hold, and nothing else; full unpickling (arbitrary code on load) needs ``trust=True``.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from bench.base.errors import BenchError, first_line, unpickler_reason


def _allow_list() -> list:
    import collections

    import numpy as np

    allowed: list = [collections.OrderedDict, np.dtype, np.ndarray, getattr]
    try:
        allowed.append(np._core.multiarray._reconstruct)
        allowed.append(np._core.multiarray.scalar)
    except AttributeError:  # numpy < 2
        pass
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer

        allowed.append(HistoryBuffer)
    except ImportError:
        pass
    return allowed


def load_checkpoint_file(path: Path, trust: bool = False) -> dict:
    """Read a checkpoint; a dict with 'state_dict' (mmengine) or a bare state dict."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint {path} does not exist")
    try:
        if trust:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with torch.serialization.safe_globals(_allow_list()):
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "unsupported global" not in str(e).lower():  # weights_only refused a global: the allow-list case
            raise BenchError(f"checkpoint {path} is corrupt or not a PyTorch checkpoint ({first_line(e)}); "
                             "download or train it again") from None
        raise BenchError(f"checkpoint {path} holds objects outside the allow-list of safe types "
                         f"({unpickler_reason(e)}); "
                         "if you trust its source, pass --trust-checkpoint to unpickle it fully") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError, OSError) as e:
        raise BenchError(f"checkpoint {path} is corrupt or not a PyTorch checkpoint ({first_line(e)}); "
                         "download or train it again") from None
    if not isinstance(ckpt, dict):
        raise BenchError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a state dict")
    return ckpt


def state_dict_of(ckpt: dict) -> dict[str, torch.Tensor]:
    sd = ckpt.get("state_dict", ckpt)
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BenchError("checkpoint has no tensor state dict ('state_dict' key or a flat name -> tensor mapping)")
    return {k.removeprefix("module."): v for k, v in sd.items()}
