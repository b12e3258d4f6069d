import numpy as np
import pytest
import torch
from pytorch_msssim import ssim as msssim_ssim
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.base.noise import quantize, to_unit
from bench.metrics import psnr, ssim


def _pairs(real_images):
    rng = np.random.default_rng(0)
    clean = torch.from_numpy(np.stack(real_images)).permute(0, 3, 1, 2).float()
    noisy = clean + torch.from_numpy(rng.normal(0, 20 / 255, clean.shape)).float()
    return to_unit(quantize(clean)), to_unit(quantize(noisy))


def test_psnr_matches_scikit_image(real_images):
    clean, noisy = _pairs(real_images)
    ours = psnr(noisy, clean)
    for i in range(len(clean)):
        ref = peak_signal_noise_ratio(clean[i].double().numpy(), noisy[i].double().numpy(), data_range=1.0)
        assert abs(float(ours[i]) - ref) < 1e-4


def test_ssim_matches_scikit_image_and_pytorch_msssim(real_images):
    clean, noisy = _pairs(real_images)
    ours = ssim(noisy, clean)
    ref_torch = msssim_ssim(noisy, clean, data_range=1.0, size_average=False)
    assert torch.allclose(ours, ref_torch, atol=1e-4)
    for i in range(len(clean)):
        ref = structural_similarity(clean[i].permute(1, 2, 0).double().numpy(), noisy[i].permute(1, 2, 0).double().numpy(),
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
                                    channel_axis=2)
        assert abs(float(ours[i]) - ref) < 1e-4


def test_identical_images():
    x = torch.rand(2, 3, 32, 32)
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)


def test_ssim_rejects_tiny_or_mismatched():
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
