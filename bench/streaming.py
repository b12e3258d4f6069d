"""Training images streamed from a decoded on-disk cache instead of held in memory.

The first run over a split decodes every image and label once (validating each, as ``SplitData`` does) into two
uint8 ``numpy`` memmaps under ``<cache>/decoded/<key>/`` (key: the files' paths, sizes and modification times), and
marks the folder complete with a manifest written last. Training crops then read only the pages they touch, so a
process's memory does not grow with the number of images, and later runs (and every worker) start at once. The
views answer the indexing ``bench.base.crops.random_crops`` does, so batches are bit-identical to in-memory tensors:
exact resume and every seed's numbers are unchanged.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.base.data import Sample, read_image, read_label, too_large, undecodable
from bench.base.errors import BenchError


def _read(path: Path, index) -> np.ndarray:
    """``array[index]`` of the .npy at ``path``, copied out of a mapping opened for this read only: the pages it
    touched leave the process with the mapping, so resident memory does not grow with what training has read."""
    mapped = np.load(path, mmap_mode="r")
    out = np.array(mapped[index], copy=True)
    del mapped
    return out


class RaggedView:
    """Images of different sizes in one flat uint8 .npy: ``view[i, ...]`` indexes image i as a (C, H_i, W_i)
    (or (H_i, W_i)) tensor; ``sizes[i]`` is (H_i, W_i); ``shape`` is (N, C, min H, min W) (a crop must fit all)."""

    def __init__(self, path: Path, offsets: np.ndarray, sizes: np.ndarray, channels: int | None) -> None:
        self._path, self._offsets, self.sizes, self._channels = path, offsets, sizes, channels

    @property
    def shape(self) -> torch.Size:
        lead = (len(self.sizes),) + ((self._channels,) if self._channels else ())
        return torch.Size(lead + (int(self.sizes[:, 0].min()), int(self.sizes[:, 1].min())))

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, index) -> torch.Tensor:
        i, *rest = index if isinstance(index, tuple) else (index,)
        h, w = (int(v) for v in self.sizes[int(i)])
        shape = ((self._channels,) if self._channels else ()) + (h, w)
        start = int(self._offsets[int(i)])
        mapped = np.load(self._path, mmap_mode="r")
        image = mapped[start:start + int(np.prod(shape))].reshape(shape)
        out = np.array(image[tuple(rest)] if rest else image, copy=True)
        del image, mapped  # the mapping (and the pages it touched) leaves the process
        return torch.from_numpy(out)


class MemmapView:
    """A read-only (N, ...) uint8 .npy on disk that indexes like a tensor and returns tensors (``_read``)."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._shape = np.load(self._path, mmap_mode="r").shape

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self._shape)

    def __len__(self) -> int:
        return self._shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        return torch.from_numpy(_read(self._path, index))


def _key(samples: list[Sample]) -> str:
    h = hashlib.sha256()
    for s in samples:
        for p in (s.image_path, s.label_path):
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Image.DecompressionBombError as e:
        raise too_large("image", path, e) from None
    except OSError as e:
        raise undecodable("image", path, e) from None


def decoded_split(samples: list[Sample], cache: Path, log: Callable[[str], None] = print) -> tuple[MemmapView, MemmapView]:
    """(images (N, 3, H, W), labels (N, H, W)) of ``samples`` as on-disk views; built once (validated) if absent."""
    if not samples:
        raise BenchError("no training images")
    import fcntl

    folder = Path(cache) / _key(samples)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            with open(folder.parent / f".{folder.name}.lock", "w") as lock:  # workers: one builds, others wait
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not manifest.is_file():
                    _build(samples, folder, log)
        except OSError as e:
            raise BenchError(f"cannot write the decoded training cache under {folder.parent} ({e.strerror or e}): "
                             "set D2SM_BENCH_CACHE to a writable folder") from None
    meta = _manifest(manifest)
    if "sha256" not in meta:  # written before the cache carried checksums: it cannot be verified, so rebuilt
        log(f"decoded cache {folder} has no checksums (an older bench wrote it): rebuilding it")
        with open(folder.parent / f".{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if "sha256" not in _manifest(manifest):
                manifest.unlink()
                _build(samples, folder, log)
        meta = _manifest(manifest)
    _verify(folder, meta)
    if meta.get("ragged"):
        sizes = np.asarray(meta["sizes"], dtype=np.int64)
        pixels = sizes[:, 0] * sizes[:, 1]
        offsets = np.concatenate([[0], np.cumsum(pixels)])[:-1]
        return (RaggedView(folder / "images.npy", 3 * offsets, sizes, 3),
                RaggedView(folder / "labels.npy", offsets, sizes, None))
    n, h, w = meta["count"], meta["height"], meta["width"]
    images, labels = MemmapView(folder / "images.npy"), MemmapView(folder / "labels.npy")
    if tuple(images.shape) != (n, 3, h, w) or tuple(labels.shape) != (n, h, w):
        raise BenchError(f"decoded cache {folder} is inconsistent with its manifest; delete the folder to rebuild it")
    return images, labels


def _manifest(path: Path) -> dict:
    """A decoded cache's manifest; a damaged one is refused with the way back."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BenchError(f"decoded cache manifest {path} is unreadable ({type(e).__name__}); delete the folder "
                         f"{path.parent} to rebuild it") from None
    if not isinstance(meta, dict):
        raise BenchError(f"decoded cache manifest {path} is not an object; delete the folder {path.parent} to "
                         "rebuild it")
    return meta


_VERIFIED: set[str] = set()  # decoded-cache folders this process has checked against their manifests


def _verify(folder: Path, meta: dict) -> None:
    """Every array of a decoded cache against the sha256 its manifest recorded when it was built, once per process:
    damaged bytes are refused with the way back instead of being scored."""
    from bench.base.atomic import sha256_file

    if str(folder) in _VERIFIED:
        return
    for name, digest in sorted(meta["sha256"].items()):
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            raise BenchError(f"decoded cache {folder} is damaged ({name} differs from the sha256 its manifest "
                             "recorded); delete the folder to rebuild it from the images")
    _VERIFIED.add(str(folder))


def _build(samples: list[Sample], folder: Path, log: Callable[[str], None]) -> None:
    from bench.base.atomic import atomic_write_json

    sizes = [_image_size(s.image_path) for s in samples]  # headers only
    t0 = time.time()
    log(f"decoding {len(samples)} images into {folder} (once; later runs read crops from it)")
    folder.mkdir(parents=True, exist_ok=True)
    ragged = any(hw != sizes[0] for hw in sizes)
    if ragged:  # one flat array each, image after image
        pixels = [h * w for h, w in sizes]
        images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(3 * sum(pixels),))
        labels = np.lib.format.open_memmap(folder / "labels.npy", mode="w+", dtype=np.uint8, shape=(sum(pixels),))
    else:
        h, w = sizes[0]
        images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=(len(samples), 3, h, w))
        labels = np.lib.format.open_memmap(folder / "labels.npy", mode="w+", dtype=np.uint8, shape=(len(samples), h, w))
    offset = 0
    for i, (s, (h, w)) in enumerate(zip(samples, sizes, strict=True)):
        image, label = read_image(s.image_path), read_label(s.label_path)
        if tuple(label.shape) != (h, w) or tuple(image.shape[1:]) != (h, w):
            raise BenchError(f"{s.image_id}: image {tuple(image.shape[1:])} and label {tuple(label.shape)} sizes differ")
        if ragged:
            images[3 * offset:3 * (offset + h * w)] = image.numpy().reshape(-1)
            labels[offset:offset + h * w] = label.numpy().reshape(-1)
            offset += h * w
        else:
            images[i], labels[i] = image.numpy(), label.numpy()
    images.flush()
    labels.flush()
    del images, labels
    from bench.base.atomic import sha256_file

    meta = {"count": len(samples), "seconds": round(time.time() - t0, 1),
            "sha256": {name: sha256_file(folder / name) for name in ("images.npy", "labels.npy")}}
    meta |= {"ragged": True, "sizes": [list(hw) for hw in sizes]} if ragged else {"height": sizes[0][0],
                                                                                  "width": sizes[0][1]}
    atomic_write_json(folder / "manifest.json", meta)


class DecodedSplit:
    """A split read from the decoded cache, with ``SplitData``'s interface (``len``, ``[i] -> (image (3, H, W),
    label (H, W))`` uint8 tensors, ``samples``): val images streamed too, memory bounded."""

    def __init__(self, samples: list[Sample], images: MemmapView | RaggedView, labels: MemmapView | RaggedView,
                 limit: int | None = None) -> None:
        self.samples = samples[:limit]
        self._images, self._labels = images, labels

    @property
    def images(self) -> MemmapView | RaggedView:
        """(N, 3, H, W) uint8 of the whole split (training crops index it)."""
        return self._images

    @property
    def labels(self) -> MemmapView | RaggedView:
        """(N, H, W) uint8 train ids of the whole split."""
        return self._labels

    def __len__(self) -> int:
        return len(self.samples)

    def ids(self) -> list[str]:
        return [s.image_id for s in self.samples]

    def image_size(self, i: int) -> tuple[int, ...]:
        """(3, H, W) of image ``i``, without reading it."""
        sizes = getattr(self._images, "sizes", None)
        return (3, *(int(v) for v in sizes[i])) if sizes is not None else tuple(self._images.shape[1:])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self.samples):
            raise IndexError(i)
        return self._images[i], self._labels[i]


def decoded(root: Path, split: str, cache: Path, log: Callable[[str], None] = print, label_root: Path | None = None,
            limit: int | None = None) -> DecodedSplit:
    """``split`` of the dataset at ``root`` through the decoded cache (built once)."""
    from bench.base.data import list_split

    samples = list_split(root, split, label_root)
    return DecodedSplit(samples, *decoded_split(samples, cache, log), limit=limit)
