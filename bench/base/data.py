"""Read a dataset in the Cityscapes folder layout (both suites).

Pairs ``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png`` with
``gtFine/<split>/<city>/<stem>_gtFine_labelTrainIds.png``. Images come out as uint8 tensors
(3, H, W) RGB; labels as uint8 tensors (H, W) of train ids (255 ignore).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.base.errors import BenchError, first_line

IMG_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelTrainIds.png"


@dataclass(frozen=True)
class Sample:
    image_id: str  # the Cityscapes stem, e.g. "frankfurt_000000_000294"
    image_path: Path
    label_path: Path


def list_split(root: Path, split: str, label_root: Path | None = None) -> list[Sample]:
    """Every (image, label) pair of ``split``, sorted by id; clear errors on a wrong layout. Labels come from
    ``label_root/gtFine`` when given (train ids written elsewhere for a read-only dataset), else ``root/gtFine``."""
    root = Path(root)
    img_dir, gt_dir = root / "leftImg8bit" / split, Path(label_root or root) / "gtFine" / split
    if not root.is_dir():
        raise BenchError(f"dataset root {root} does not exist; pass the folder that holds leftImg8bit/ and gtFine/")
    for d, what in ((img_dir, "images"), (gt_dir, "labels")):
        if not d.is_dir():
            hint = ""
            if (root / split).is_dir() or root.name in ("leftImg8bit", "gtFine"):
                hint = f" (the root looks one level too deep: use {root.parent})"
            raise BenchError(f"{what} folder {d} is missing: expected the Cityscapes layout "
                             f"<root>/leftImg8bit/{split}/<city>/*{IMG_SUFFIX} and "
                             f"<root>/gtFine/{split}/<city>/*{LABEL_SUFFIX}{hint}")
    images = sorted(img_dir.glob(f"*/*{IMG_SUFFIX}"))
    if not images:
        raise BenchError(f"no *{IMG_SUFFIX} files under {img_dir}/<city>/")
    stray = sorted(set(img_dir.rglob(f"*{IMG_SUFFIX}")) - set(images))
    if stray:
        raise BenchError(f"{len(stray)} images of {split} are not in a city folder ({img_dir}/<city>/), e.g. "
                         f"{stray[0]}: move them into one, or they would be left out")
    samples, unpaired = [], []
    for p in images:
        stem = p.name[: -len(IMG_SUFFIX)]
        lab = gt_dir / p.parent.name / f"{stem}{LABEL_SUFFIX}"
        for path in (p, lab):
            if path.is_symlink() and not path.exists():
                raise BenchError(f"{path} is a symbolic link to {path.readlink()}, which does not exist; {REDO}")
        if not lab.is_file():
            unpaired.append(stem)
            continue
        samples.append(Sample(stem, p, lab))
    if unpaired:
        extra = ""
        ids_dir = root / "gtFine" / split
        if any((ids_dir / s.split("_")[0] / f"{s}_gtFine_labelIds.png").is_file() for s in unpaired[:3]):
            extra = (" (labelIds found: create the train-id files with "
                     f"`python -m bench cityscapes-labels --data-root {root}`; for a read-only dataset add "
                     "--out DIR, then run with --label-root DIR)")
        raise BenchError(f"{len(unpaired)} images of {split} have no {LABEL_SUFFIX} label, e.g. {unpaired[0]}{extra}")
    return samples


TRAIN_IDS = frozenset(range(19)) | {255}
REDO = ("regenerate it (synthcity: delete the suite's folder in the cache, or `python -m bench prepare`) or copy "
        "it again from the dataset")


def undecodable(what: str, path: Path, e: BaseException) -> BenchError:
    """The one-line error for an image or label file that cannot be decoded."""
    return BenchError(f"{what} {path} cannot be decoded ({first_line(e)}): truncated or not a PNG; {REDO}")


def too_large(what: str, path: Path, e: BaseException) -> BenchError:
    """The one-line error for a file whose header declares more pixels than PIL decodes safely."""
    return BenchError(f"{what} {path} declares more pixels than PIL decodes safely ({first_line(e)}): a "
                      f"decompression bomb or a damaged header; {REDO}")


IMAGE_MODES = ("RGB", "L", "P")  # 8-bit: converted to RGB as they are; 16-bit, float or alpha images are refused
LABEL_MODES = ("L", "P", "I", "I;16")
MIN_SIDE = 11  # the SSIM window: a smaller image has no SSIM


def _opened(im: Image.Image, path: Path, what: str) -> None:
    """Refuse what would decode to other pixels than the file means: another format under .png, a mode that
    ``convert`` would clip or drop, an image too small to score."""
    if im.format != "PNG":
        raise BenchError(f"{what} {path} is a {im.format or 'non-PNG'} file named .png; convert it to PNG "
                         f"(lossless), or {REDO}")
    modes = LABEL_MODES if what == "label" else IMAGE_MODES
    if im.mode not in modes:
        kind = "a single-channel train-id PNG" if what == "label" else "an 8-bit RGB PNG"
        extra = " (16-bit: converting would clip it; convert it with its real range)" if "16" in im.mode or \
            im.mode in ("I", "F") else ""
        raise BenchError(f"{what} {path} has mode {im.mode}{extra}; expected {kind}")
    if what == "image" and min(im.size) < MIN_SIDE:
        raise BenchError(f"{what} {path} is {im.size[0]}x{im.size[1]} pixels; images need at least {MIN_SIDE} a side "
                         "(the SSIM window)")


def _decoded(path: Path, what: str, convert: str | None = None) -> np.ndarray:
    """The pixels of an image file; a decode error names the file."""
    from PIL import UnidentifiedImageError

    try:
        with Image.open(path) as im:
            _opened(im, path, what)
            return np.asarray(im.convert(convert) if convert else im).copy()
    except Image.DecompressionBombError as e:
        raise too_large(what, path, e) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise undecodable(what, path, e) from None


def read_image(path: Path) -> torch.Tensor:
    """uint8 (3, H, W) RGB."""
    return torch.from_numpy(_decoded(path, "image", "RGB")).permute(2, 0, 1).contiguous()


def read_label(path: Path) -> torch.Tensor:
    """uint8 (H, W) train ids (0-18, 255 ignore); any other value is an error naming the file."""
    arr = _decoded(path, "label")
    bad = sorted(set(np.unique(arr).tolist()) - TRAIN_IDS)
    if bad:
        raise BenchError(f"label {path} holds values {bad[:8]} outside the 19 train ids and 255: make the train-id "
                         "labels with `python -m bench cityscapes-labels --data-root ROOT --force`, or " + REDO)
    return torch.from_numpy(arr.astype(np.uint8))


def check_split(root: Path, split: str, label_root: Path | None = None) -> int:
    """Every label file of ``split`` read and validated as a run reads it (mode, train ids), every image's PNG
    structure verified (chunks and checksums: truncation, flipped bytes) and its size checked against its label's;
    returns the number of pairs."""
    from tqdm import tqdm

    samples = list_split(root, split, label_root)
    for s in tqdm(samples, desc=f"checking {split} labels", unit="label", leave=False, disable=len(samples) < 200):
        label = read_label(s.label_path)
        try:
            with Image.open(s.image_path) as im:
                _opened(im, s.image_path, "image")
                size = im.size[::-1]
                im.verify()
        except Image.DecompressionBombError as e:
            raise too_large("image", s.image_path, e) from None
        except (OSError, SyntaxError, ValueError) as e:
            raise undecodable("image", s.image_path, e) from None
        if tuple(label.shape) != tuple(size):
            raise BenchError(f"{s.image_id}: image {tuple(size)} and label {tuple(label.shape)} sizes differ")
    return len(samples)


class SplitData:
    """The images and labels of one split, read once and kept in memory when ``cache``."""

    def __init__(self, root: Path, split: str, cache: bool = True, limit: int | None = None,
                 label_root: Path | None = None) -> None:
        self.samples = list_split(root, split, label_root)[:limit]
        self.split = split
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def ids(self) -> list[str]:
        return [s.image_id for s in self.samples]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = self.samples[i]
        item = read_image(s.image_path), read_label(s.label_path)
        if item[0].shape[1:] != item[1].shape:
            raise BenchError(f"{s.image_id}: image {tuple(item[0].shape[1:])} and label {tuple(item[1].shape)} sizes differ")
        if self._cache is not None:
            self._cache[i] = item
        return item
