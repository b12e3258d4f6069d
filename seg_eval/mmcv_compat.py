"""Make mmsegmentation import and run on mmcv-lite (mmcv without its compiled ``_ext``).

mmcv-lite ships ``mmcv/ops/*.py`` but not the compiled ``mmcv._ext`` they load at import, so
``import mmseg.models`` fails on ``from mmcv.ops import point_sample``. We register a stand-in
``mmcv._ext`` module whose every attribute is a function that raises :class:`CompiledOpUnavailable`
when *called*. Pure-Python ops (``point_sample``, ``resize`` helpers ...) then work; a model that
really calls a compiled kernel (CCNet's criss-cross attention, PSANet's mask) fails at that call
with a message that names the models that do work.

Nothing is done when the real compiled mmcv is installed.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

from bench.base.errors import BenchError

MODELS_THAT_WORK = ("segformer", "fcn", "pspnet", "deeplabv3", "deeplabv3plus", "bisenetv1", "bisenetv2",
                    "fast_scnn", "cgnet", "stdc", "pidnet", "unet", "ocrnet", "upernet", "mobilenet_v2/v3")


class CompiledOpUnavailable(BenchError, RuntimeError):
    pass


class _MissingExt(types.ModuleType):
    """Stand-in for ``mmcv._ext``: attributes exist (so mmcv's import-time asserts pass) but raise on call."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def missing(*args, **kwargs):
            raise CompiledOpUnavailable(
                f"mmcv compiled op '{name}' is needed by this model, but only mmcv-lite (no compiled ops) is "
                f"installed. Choose a model built from pure-PyTorch layers ({', '.join(MODELS_THAT_WORK)}), or "
                "install the full mmcv 2.1 built for your torch/CUDA (pip install mmcv==2.1.0, compiles from source).")

        missing.__name__ = name
        return missing


def install() -> bool:
    """Register the stand-in if the compiled extension is absent; True when the stand-in is active."""
    if "mmcv._ext" in sys.modules:
        return isinstance(sys.modules["mmcv._ext"], _MissingExt)
    try:
        spec = importlib.util.find_spec("mmcv._ext")
    except ModuleNotFoundError:
        spec = None
    if spec is not None:
        return False
    ext = _MissingExt("mmcv._ext")
    # A spec without a loader: importlib/pkgutil lookups (mmengine's mmcv_full_available) see "no compiled mmcv".
    ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)
    sys.modules["mmcv._ext"] = ext
    return True


LITE = install()
