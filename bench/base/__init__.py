"""The base layer of bench: what models/, losses/ and seg_eval/ may import, and nothing above it.

errors (``BenchError``), registry (open registries, plugins by entry point and dotted path), atomic (atomic
writes, checksums), data (the Cityscapes-layout image/label reader), classes (the 19 train ids), noise (the
paper's noise draws, 8-bit quantisation), crops (seeded random crops), optim (learning-rate schedules), exact
(exact arithmetic), image_metrics (batched PSNR / SSIM / MS-SSIM on tensors). Nothing here imports the harness
(``bench.*`` outside ``bench.base``); ``tests/test_layers.py`` checks it.
"""
