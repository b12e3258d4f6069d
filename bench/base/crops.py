"""Random square crops with the 8 flips/transposes, drawn from (seed, iteration) alone."""
from __future__ import annotations

import torch


def crop_generator(seed: int, it: int) -> torch.Generator:
    """The generator of iteration ``it``: batches are reproducible and resumable by construction."""
    return torch.Generator().manual_seed(seed * 1_000_003 + it)


def random_crops(images: torch.Tensor, labels: torch.Tensor | None, batch: int, crop: int,
                 g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``batch`` crops of side ``min(crop, H, W)`` with a random flip/transpose each.

    images: (N, 3, H, W) uint8; labels: (N, H, W) uint8 or None. Returns (B, 3, c, c) uint8 and
    (B, c, c) uint8 (or None), the same geometry for both. Images of different sizes (a view with ``sizes``,
    ``bench.streaming.RaggedView``; its shape gives the smallest H, W) get positions drawn within each image.
    """
    n, _, h, w = images.shape
    c = min(crop, h, w)
    idx = torch.randint(0, n, (batch,), generator=g).tolist()
    sizes = getattr(images, "sizes", None)
    if sizes is None:  # one size: the draws every existing cell was trained with
        ys = torch.randint(0, h - c + 1, (batch,), generator=g).tolist()
        xs = torch.randint(0, w - c + 1, (batch,), generator=g).tolist()
    else:
        u = torch.rand((2, batch), generator=g, dtype=torch.float64)
        ys = [int(u[0, k] * (int(sizes[i][0]) - c + 1)) for k, i in enumerate(idx)]
        xs = [int(u[1, k] * (int(sizes[i][1]) - c + 1)) for k, i in enumerate(idx)]
    aug = torch.randint(0, 8, (batch,), generator=g).tolist()
    crops, labs = [], []
    for i, y, x, a in zip(idx, ys, xs, aug, strict=True):
        pair = [images[i, :, y:y + c, x:x + c]] + ([labels[i, None, y:y + c, x:x + c]] if labels is not None else [])
        if a & 1:
            pair = [t.flip(-1) for t in pair]
        if a & 2:
            pair = [t.flip(-2) for t in pair]
        if a & 4:
            pair = [t.transpose(-1, -2) for t in pair]
        crops.append(pair[0])
        if labels is not None:
            labs.append(pair[1][0])
    return torch.stack(crops), (torch.stack(labs) if labels is not None else None)
