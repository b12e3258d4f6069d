import io

import numpy as np
import torch
from PIL import Image

from bench.base.noise import add_train_noise, draw_train_sigma, eval_noise, quantize


def test_eval_noise_is_a_function_of_id_sigma_seed():
    a = eval_noise("frankfurt_000000_000294", 25, 0, (3, 8, 8))
    torch.randn(100)  # global RNG state must not matter
    assert torch.equal(a, eval_noise("frankfurt_000000_000294", 25, 0, (3, 8, 8)))
    assert not torch.equal(a, eval_noise("frankfurt_000000_000295", 25, 0, (3, 8, 8)))
    assert not torch.equal(a, eval_noise("frankfurt_000000_000294", 25, 1, (3, 8, 8)))
    b = eval_noise("frankfurt_000000_000294", 50, 0, (3, 8, 8))
    assert not torch.equal(a * 2, b)  # a new draw per sigma, not a rescaled one
    big = eval_noise("x", 50, 0, (3, 256, 256))
    assert abs(float(big.std()) - 50 / 255) < 0.005


def test_train_noise_sigma_range_and_no_clipping():
    g = torch.Generator().manual_seed(0)
    sigma = draw_train_sigma(10000, 75, g)
    assert float(sigma.min()) >= 0 and float(sigma.max()) <= 75 / 255 + 1e-9
    assert abs(float(sigma.mean()) - 37.5 / 255) < 0.01
    clean = torch.ones(4, 3, 16, 16)
    noisy = add_train_noise(clean, torch.full((4,), 0.3), g)
    assert float(noisy.max()) > 1.0  # not clipped


def test_quantize_equals_a_png_round_trip():
    x = torch.rand(3, 17, 19) * 1.4 - 0.2
    q = quantize(x)
    arr = (np.clip(x.permute(1, 2, 0).numpy(), 0, 1) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    assert np.array_equal(q.permute(1, 2, 0).numpy(), back)
