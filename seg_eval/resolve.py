"""Find an mmseg Cityscapes config by name or path, and a checkpoint by path (or URL, when allowed).

Names are those of the configs mmseg ships in its wheel (``mmseg/.mim/configs/<model>/<name>.py``),
e.g. ``segformer_mit-b0_8xb1-160k_cityscapes-1024x1024``; a checkpoint URL is fetched into the torch
hub cache only with ``allow_download`` (``--allow-download``), never silently.
"""
from __future__ import annotations

from pathlib import Path

from bench.base.errors import BenchError
from bench.base.registry import unknown_name_message

# The documented default evaluator for the cityscapes suite: SegFormer-B0 runs on mmcv-lite (no compiled
# ops), is light enough for CPU evaluation (0.66 s per 512x1024 forward on 2 cores) and strong on Cityscapes
# (76.5 mIoU at 1024x1024, mmseg model zoo); its checkpoint is public.
DEFAULT_CONFIG = "segformer_mit-b0_8xb1-160k_cityscapes-1024x1024"
DEFAULT_CHECKPOINT_URL = ("https://download.openmmlab.com/mmsegmentation/v0.5/segformer/"
                          "segformer_mit-b0_8x1_1024x1024_160k_cityscapes/"
                          "segformer_mit-b0_8x1_1024x1024_160k_cityscapes_20211208_101857-e7f88502.pth")


def shipped_configs() -> dict[str, Path]:
    """name -> path of every Cityscapes config in mmseg's wheel."""
    import mmseg

    root = Path(mmseg.__file__).parent / ".mim" / "configs"
    return {p.stem: p for p in root.glob("*/*.py") if "cityscapes" in p.stem}


def resolve_config(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix == ".py" or "/" in str(name_or_path):
        raise BenchError(f"segmenter config {name_or_path} does not exist")
    configs = shipped_configs()
    if str(name_or_path) not in configs:
        raise BenchError(unknown_name_message("mmseg Cityscapes config", str(name_or_path), configs)[:600] + " ...")
    return configs[str(name_or_path)]


def zoo_checkpoint_url(config: Path) -> str:
    """The model-zoo weights URL of a shipped config, from the metafile beside it."""
    import yaml

    meta = config.parent / "metafile.yaml"
    if meta.is_file():
        for model in yaml.safe_load(meta.read_text()).get("Models", []):
            if model.get("Name") == config.stem and model.get("Weights"):
                return model["Weights"]
    raise BenchError(f"no model-zoo checkpoint is listed for {config.stem}; pass --seg-checkpoint PATH")


def resolve_checkpoint(path_or_url: str | Path, config: Path | None = None, allow_download: bool = False,
                       log=print) -> Path:
    """A local checkpoint: a path; a URL (hub cache, or fetched with allow_download); "zoo": the config's URL."""
    text = str(path_or_url)
    if text == "zoo":
        if config is None:
            raise BenchError("--seg-checkpoint zoo needs --seg-config")
        text = zoo_checkpoint_url(config)
    if text.startswith(("http://", "https://")):
        import torch

        target = Path(torch.hub.get_dir()) / "checkpoints" / text.rsplit("/", 1)[-1]
        if target.is_file():
            return target
        if not allow_download:
            raise BenchError(f"the segmenter checkpoint is a URL and is not in the torch hub cache ({target}); "
                             "pass --allow-download to fetch it, or download it yourself and pass its path")
        log(f"downloading {text} -> {target}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(text, str(target), progress=False)
        except OSError as e:  # URLError, timeouts, DNS failures, a read-only hub cache
            raise BenchError(f"cannot download {text} ({getattr(e, 'reason', None) or e}): offline or unreachable? "
                             f"fetch it on a machine with internet into {target}, or pass the file's path") from None
        return target
    path = Path(path_or_url)
    if not path.is_file():
        raise BenchError(f"segmenter checkpoint {path} does not exist")
    return path
