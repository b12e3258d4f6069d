"""Real Cityscapes on disk: the official layout, train-id labels made with cityscapesscripts' table.

Layout: ``<root>/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``<root>/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png``. mmseg and this
benchmark read ``*_gtFine_labelTrainIds.png``; :func:`make_train_ids` writes them from the labelIds
with cityscapesscripts' own label table (never a hand-typed one), 255 for every ignored id.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.base.atomic import atomic_write_bytes
from bench.base.data import IMG_SUFFIX, LABEL_SUFFIX, list_split
from bench.base.errors import BenchError

LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
EXPECTED_COUNTS = {"train": 2975, "val": 500}


def train_id_lookup() -> np.ndarray:
    """(256,) uint8: labelId -> trainId (255 = ignore) from cityscapesscripts; ids it does not define map to 0
    and are flagged by :func:`unknown_ids`."""
    try:
        from cityscapesscripts.helpers.labels import labels
    except ImportError:
        raise BenchError("cityscapesscripts is needed to convert labelIds: pip install cityscapesscripts") from None
    lut = np.zeros(256, np.uint8)
    for lab in labels:
        if 0 <= lab.id < 256:
            lut[lab.id] = 255 if lab.trainId in (-1, 255) else lab.trainId
    return lut


def known_ids() -> set[int]:
    from cityscapesscripts.helpers.labels import labels

    return {lab.id for lab in labels if lab.id >= 0}


def make_train_ids(root: Path, splits: tuple[str, ...] = ("train", "val"), force: bool = False,
                   log: Callable[[str], None] = print, out: Path | None = None) -> int:
    """Write every missing ``*_labelTrainIds.png`` from its ``*_labelIds.png``, beside it or, with ``out``, under
    ``out/gtFine/<split>/<city>/`` (a read-only dataset; run with ``--label-root out``); returns how many."""
    root = Path(root)
    target_root = Path(out) if out else root
    lut, known = train_id_lookup(), known_ids()
    written = 0
    for split in splits:
        gt = root / "gtFine" / split
        if not gt.is_dir():
            raise BenchError(f"{gt} is missing: expected <root>/gtFine/{split}/<city>/*{LABEL_IDS_SUFFIX}"
                             + (f" (the root looks one level too deep: use {root.parent})"
                                if root.name in ("gtFine", "leftImg8bit") else ""))
        sources = sorted(gt.glob(f"*/*{LABEL_IDS_SUFFIX}"))
        if not sources:
            raise BenchError(f"no *{LABEL_IDS_SUFFIX} files under {gt}/<city>/")
        for src in sources:
            dst = (target_root / src.relative_to(root)).with_name(src.name[: -len(LABEL_IDS_SUFFIX)] + LABEL_SUFFIX)
            if dst.is_file() and not force:
                continue
            with Image.open(src) as im:
                if im.mode not in ("L", "P", "I", "I;16"):
                    raise BenchError(f"{src} has mode {im.mode}; a labelIds file is a single-channel PNG of label ids")
                ids = np.asarray(im)
            bad = sorted(set(np.unique(ids).tolist()) - known)
            if bad:
                raise BenchError(f"{src} holds values {bad[:8]} that are not Cityscapes label ids (0-33): is it a "
                                 "labelIds file?")
            import io

            buf = io.BytesIO()
            Image.fromarray(lut[ids.astype(np.int64)]).save(buf, format="PNG")
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(dst, buf.getvalue())
            except OSError as e:
                raise BenchError(f"cannot write {dst} ({e.strerror}): for a read-only dataset pass --out DIR to "
                                 "write the train ids there, then run with --label-root DIR") from None
            written += 1
    log(f"wrote {written} *{LABEL_SUFFIX} files under {target_root / 'gtFine'}")
    return written


def validate(root: Path, log: Callable[[str], None] = print, label_root: Path | None = None) -> dict[str, int]:
    """Check the layout and the train-id labels of both splits; warn on subsets. Returns image counts."""
    counts = {}
    for split in ("train", "val"):
        samples = list_split(Path(root), split, label_root)  # wrong level, missing folders, unpaired images
        counts[split] = len(samples)
        with Image.open(samples[0].label_path) as im:
            values = set(np.unique(np.asarray(im)).tolist())
        if not values <= set(range(19)) | {255}:
            raise BenchError(f"{samples[0].label_path} holds values {sorted(values - set(range(19)) - {255})[:8]} "
                             "outside the 19 train ids and 255: make the train-id labels with "
                             "`python -m bench cityscapes-labels --data-root ROOT --force`")
        if counts[split] != EXPECTED_COUNTS[split]:
            log(f"warning: {split} has {counts[split]} images, not Cityscapes' {EXPECTED_COUNTS[split]} (a subset?)")
    return counts


__all__ = ["IMG_SUFFIX", "LABEL_IDS_SUFFIX", "make_train_ids", "validate", "train_id_lookup"]
