"""Write synthcity to disk in the Cityscapes folder layout, behind a version-stamped cache.

``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` (RGB) and
``gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelTrainIds.png`` (train ids, 255 ignore),
so that one loader (bench.base.data) reads both suites.
"""
from __future__ import annotations

import fcntl
import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.paths import cache_root

from .render import render_scene

GENERATOR_VERSION = 4  # bump whenever a change to render.py changes any pixel
CITIES = {"train": ("synthburg", "noisenhausen", "pixelstadt"), "val": ("valdorf",)}
_SPLIT_CODE = {"train": 0, "val": 1}


@dataclass(frozen=True)
class SynthcitySpec:
    height: int = 128
    width: int = 256
    n_train: int = 480
    n_val: int = 96
    seed: int = 0

    def key(self) -> str:
        return (f"v{GENERATOR_VERSION}-{renderer_digest()}-{self.height}x{self.width}-t{self.n_train}-v{self.n_val}"
                f"-s{self.seed}")


def renderer_digest() -> str:
    """A digest of the renderer's source: data made by other code (a forgotten experiment, an edit without a
    version bump) is never taken for this generator's, and weights trained on it are never reused."""
    import hashlib

    here = Path(__file__).parent
    sources = (here / "render.py", here.parent / "base" / "classes.py")  # the classes moved, their text did not
    text = "".join(p.read_text() for p in sources)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_CODE[split], index])


def scene_name(split: str, index: int) -> tuple[str, str]:
    """(city, stem) of scene ``index`` of ``split``; stems follow Cityscapes' naming."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{19:06d}"


def _write_one(args: tuple[Path, SynthcitySpec, str, int]) -> None:
    root, spec, split, index = args
    img, lab = render_scene(spec.height, spec.width, scene_rng(spec.seed, split, index))
    city, stem = scene_name(split, index)
    d_img, d_lab = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
    Image.fromarray((img * 255.0).round().astype(np.uint8)).save(d_img / f"{stem}_leftImg8bit.png", compress_level=1)
    Image.fromarray(lab).save(d_lab / f"{stem}_gtFine_labelTrainIds.png", compress_level=1)


def generate(root: Path, spec: SynthcitySpec, workers: int = 2) -> None:
    """Render every scene of ``spec`` into ``root`` (which must not exist yet)."""
    jobs = []
    for split, n in (("train", spec.n_train), ("val", spec.n_val)):
        for city in CITIES[split]:
            (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
            (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
        jobs += [(root, spec, split, i) for i in range(n)]
    if workers > 1:
        # spawned, not forked: a forked worker inherits the open generation lock and, orphaned by a killed parent,
        # kept it held, so the next run waited forever; Python opens files non-inheritable, so a spawned one cannot
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            list(ex.map(_write_one, jobs, chunksize=16))
    else:
        for j in jobs:
            _write_one(j)


def ensure_synthcity(spec: SynthcitySpec = SynthcitySpec(), root: Path | None = None, workers: int = 2,
                     log=print) -> Path:
    """Return the folder of ``spec``'s dataset, generating it first when absent or stale.

    The folder name carries the generator version and the spec, and a ``manifest.json`` written
    last marks it complete, so an interrupted generation is redone rather than used.
    """
    base = root if root is not None else cache_root() / "synthcity"
    out = base / spec.key()
    if _complete(out, spec):
        verify(out)
        return out
    try:
        base.mkdir(parents=True, exist_ok=True)
        with open(base / f".{spec.key()}.lock", "w") as lock:  # concurrent runs: one generates, the others wait
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _complete(out, spec):
                _generate_into(out, base, spec, workers, log)
    except OSError as e:
        from bench.base.errors import BenchError

        raise BenchError(f"cannot write the synthcity data under {base} ({e.strerror or e}): set D2SM_BENCH_CACHE to "
                         "a writable folder") from None
    return out


def _complete(out: Path, spec: SynthcitySpec) -> bool:
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return False  # an unreadable manifest: the folder is generated again
    return (meta.get("generator_version") == GENERATOR_VERSION and meta.get("spec") == asdict(spec)
            and isinstance(meta.get("files"), dict))  # (folders written before checksums are generated again)


def checksums(root: Path) -> dict[str, str]:
    """{path relative to ``root``: sha256} of every PNG under ``root``."""
    from bench.base.atomic import sha256_file

    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*.png"))}


_verified: set[Path] = set()


def verify(out: Path) -> None:
    """Every file of a generated folder against its manifest's sha256, once per process (about 0.1 s for the
    default suite); a changed, missing or extra file is an error naming it and the way back."""
    if out in _verified:
        return
    from bench.base.errors import BenchError

    expected = json.loads((out / "manifest.json").read_text())["files"]
    actual = checksums(out)
    fix = f"the cache was modified: delete {out} and it is generated again on the next run (about 10 s)"
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            raise BenchError(f"synthcity file {out / rel} is missing; {fix}")
        if rel not in expected:
            raise BenchError(f"synthcity file {out / rel} is not in its manifest; {fix}")
        if actual[rel] != expected[rel]:
            raise BenchError(f"synthcity file {out / rel} differs from its manifest (sha256); {fix}")
    _verified.add(out)


def _generate_into(out: Path, base: Path, spec: SynthcitySpec, workers: int, log) -> None:
    tmp = base / f".{spec.key()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    log(f"generating synthcity {spec.key()} ({spec.n_train} train + {spec.n_val} val scenes) in {out}")
    generate(tmp, spec, workers)
    (tmp / "manifest.json").write_text(json.dumps(
        {"generator_version": GENERATOR_VERSION, "spec": asdict(spec), "seconds": round(time.time() - t0, 2),
         "files": checksums(tmp)}, indent=1))
    tmp.rename(out)
    log(f"generated in {time.time() - t0:.1f} s")
