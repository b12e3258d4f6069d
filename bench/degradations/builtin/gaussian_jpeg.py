"""A compound degradation: Gaussian noise of std level/255, then the image saved as an 8-bit JPEG of ``quality``
(Pillow's libjpeg, 4:2:0 chroma) and decoded, as a camera or a web upload would after a noisy capture. The noise is
no longer white: JPEG quantises it blockwise. The noise-map backbone receives the sigma of the noise before
compression."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from bench.base.noise import quantize, to_unit
from bench.degradations.registry import Degradation, register_degradation


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """(B, 3, H, W) float in [0, 1] (clipped) -> the same after an 8-bit JPEG round trip (float, CPU)."""
    out = []
    for u8 in quantize(images).cpu():
        buf = io.BytesIO()
        Image.fromarray(u8.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=int(quality))
        decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        out.append(torch.from_numpy(decoded.copy()).permute(2, 0, 1))
    return to_unit(torch.stack(out))


@register_degradation("gaussian_jpeg", "Gaussian noise of std level/255, then an 8-bit JPEG round trip of quality "
                      "q (compound)", order=40)
class GaussianJPEG(Degradation):
    def __init__(self, quality: int = 75) -> None:
        if not 1 <= int(quality) <= 95:
            from bench.base.errors import BenchError

            raise BenchError(f"degradation gaussian_jpeg: quality must be in [1, 95], not {quality}")
        self.quality = int(quality)

    def draw_train(self, clean, level, gen, exact=False):
        noise = torch.randn(clean.shape, generator=gen, device=gen.device).to(clean.device)
        noisy = clean + noise * level.view(-1, 1, 1, 1).to(clean.device)
        return jpeg(noisy, self.quality).to(clean.device, clean.dtype), level

    def draw_test(self, clean, level, gen):
        noisy = clean + torch.randn(clean.shape, generator=gen) * (float(level) / 255.0)
        return jpeg(noisy[None], self.quality)[0], torch.tensor(float(level) / 255.0)
