"""Does training memory follow the machine, not the dataset? Peak RSS and time to the first batch, by image count.

    python -m bench.benchmarks.streaming_memory [--counts 64 256] [--height 1024 --width 2048] [--steps 20]

For each count, a Cityscapes-layout tree of that many random full-size train images is written to ``--work``,
then a fresh child process opens the split the way a run does (``bench.streaming.decoded_split``: decoded once
into an on-disk cache) and draws ``--steps`` training batches of 8 crops of 512 px; the child reports its time to
the first batch (cache built and warm, the second opening) and its peak resident memory. Also the crops/s the
loader delivers. Not a test: numbers depend on the machine and its disk.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path


def make_tree(root: Path, count: int, height: int, width: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    for split, n in (("train", count), ("val", 1)):
        img_dir, gt_dir = root / "leftImg8bit" / split / "city", root / "gtFine" / split / "city"
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        # smooth scenes with a little noise: quick to write and decode, the size of Cityscapes images in memory
        base = np.stack([(yy // 4 + xx // 8) % 256, (xx // 3) % 256, (yy // 2) % 256], -1).astype(np.uint8)
        base = (base + rng.integers(0, 8, base.shape)).astype(np.uint8)
        for i in range(n):
            stem = f"city_{i:06d}_000019"
            if (img_dir / f"{stem}_leftImg8bit.png").is_file():
                continue
            Image.fromarray(np.roll(base, i, axis=1)).save(img_dir / f"{stem}_leftImg8bit.png", compress_level=1)
            Image.fromarray(np.full((height, width), i % 19, np.uint8)).save(gt_dir / f"{stem}_gtFine_labelTrainIds.png")


def _child(root: str, cache: str, steps: int, out) -> None:
    from bench.base.data import SplitData
    from bench.config import TrainConfig
    from bench.streaming import decoded_split
    from bench.train import draw_batch

    samples = SplitData(Path(root), "train", cache=False).samples
    t0 = time.perf_counter()
    images, labels = decoded_split(samples, Path(cache), log=lambda *_: None)
    cfg = TrainConfig(batch=8, crop=512)
    draw_batch(images, cfg, 0, 0, labels)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    for it in range(1, steps + 1):
        draw_batch(images, cfg, 0, it, labels)
    rate = steps * cfg.batch / (time.perf_counter() - t1)
    out.put({"first_batch_s": first, "crops_per_s": rate,
             "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def measure(root: Path, cache: Path, steps: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(str(root), str(cache), steps, q))
    p.start()
    r = q.get()
    p.join()
    return r


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--work", type=Path, default=Path("/tmp/d2sm-streaming"))
    args = ap.parse_args(argv)
    rows = []
    for n in args.counts:
        root = args.work / f"tree{n}"
        make_tree(root, n, args.height, args.width)
        cache = args.work / f"decoded{n}"
        t0 = time.perf_counter()
        measure(root, cache, 1)  # the first opening decodes into the cache
        build_s = time.perf_counter() - t0
        warm = measure(root, cache, args.steps)
        rows.append({"images": n, "cache_build_s": round(build_s, 1), **{k: round(v, 2) for k, v in warm.items()}})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.height}x{args.width} train images, batches of 8 crops of 512 px, {args.steps} steps")
    print("| images | cache build (s, once) | first batch (s) | crops/s | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['images']} | {r['cache_build_s']} | {r['first_batch_s']} | {r['crops_per_s']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
