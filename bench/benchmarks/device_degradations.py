"""The new measuring paths on an accelerator: per-pixel noise maps through FFDNet under bf16 autocast and
channels_last (a training step and a restoration), MS-SSIM / SSIM / PSNR / LPIPS (on the embedded-style VGG) on
the device against the CPU, and every degradation's test draw on both. Prints one JSON line of differences.

    python -m bench.benchmarks.device_degradations [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import time

import torch


def main(argv: list[str] | None = None) -> int:
    from bench.degradations import DEGRADATIONS, build_degradation
    from bench.metrics import ms_ssim, psnr, ssim
    from losses.lpips_distance import LPIPSOnFeatures
    from losses.vgg import VGGFeatures
    from models import build_backbone

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    out: dict = {"device": str(dev), "name": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"}
    torch.manual_seed(0)
    clean = torch.rand(4, 3, 128, 256)
    for name in DEGRADATIONS.names():
        deg = build_degradation(name)
        draws = [deg.draw_test(c, 25.0, torch.Generator().manual_seed(i)) for i, c in enumerate(clean)]
        noisy = torch.stack([d[0] for d in draws])
        level = torch.stack([d[1] for d in draws])
        net = build_backbone("ffdnet_small").to(dev).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        t0 = time.time()
        for _ in range(3):  # training steps under bf16 with the degradation's own map
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                loss = (net(noisy.to(dev).contiguous(memory_format=torch.channels_last), level.to(dev)).float()
                        - clean.to(dev)).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            on_dev = net.restore(noisy.to(dev), level.to(dev)).float().cpu()
            on_cpu = net.cpu().restore(noisy, level)
        out[name] = {"map_shape": list(level.shape), "loss": float(loss.detach()), "finite": bool(torch.isfinite(on_dev).all()),
                     "restore_max_abs_diff_fp32": float((on_dev - on_cpu).abs().max()),
                     "seconds": round(time.time() - t0, 3)}
    x = (clean + 0.1 * torch.randn(clean.shape)).clamp(0, 1)
    vgg = VGGFeatures(width=0.125).eval()
    lp = LPIPSOnFeatures(vgg)
    with torch.no_grad():
        pairs = {"psnr": (psnr, {}), "ssim": (ssim, {}), "ms_ssim": (ms_ssim, {})}
        for k, (fn, kw) in pairs.items():
            out[k] = {"max_abs_diff": float((fn(x.to(dev), clean.to(dev), **kw).cpu() - fn(x, clean, **kw)).abs().max())}
        d_cpu = lp(x, clean)
        d_dev = lp.to(dev)(x.to(dev), clean.to(dev)).cpu()
        out["lpips_formula"] = {"max_rel_diff": float(((d_dev - d_cpu).abs() / d_cpu.abs()).max())}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
