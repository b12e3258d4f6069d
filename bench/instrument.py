"""The instrument check: the measuring chain alone, with no training in it, against a committed baseline.

Training amplifies rounding (another CPU, another thread count) into differences of a tenth of a dB, so a trained
cell can only be checked within tolerances of that size. The chain that measures a cell (validation data, test
noise, the restoration pass, 8-bit quantisation, PSNR/SSIM, the segmenter, mIoU) has no such amplifier: scored on
fixed networks it gives the same numbers on any machine up to rounding. So a baseline may hold an ``instrument``
section, checked by ``bench check`` to tolerances a thousand times tighter than a training cell's:

- ``noisy input`` and ``clean input``: the reference rows (no restoration);
- ``frozen <cell>``: a denoiser whose weights are committed beside the baseline (``<baseline>.frozen.pth``, the
  scored weights of the baseline's first seed-0 cell, loaded with ``weights_only=True``), restored and scored.

Keys are ``instrument:<row>|<sigma>|<metric>``, as the cells' keys are ``<slug>|<sigma>|<metric>``.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import torch

from bench.base.errors import BenchError

# The smallest step the instrument check resolves: a measured spread of exactly 0 (one machine, two thread counts)
# cannot be a tolerance for another CPU, whose convolutions round differently and can move an 8-bit output value
# at a tie. 1e-4 dB / 1e-4 SSIM / 1e-4 mIoU is 1,500x, 50x and 150x tighter than the training bounds.
RESOLUTION = {"psnr": 1e-4, "ssim": 1e-4, "miou": 1e-4}
PERTURBATION = 1e-6  # relative, of the frozen weights: rounding-sized, as another CPU's arithmetic is


def perturb_weights(model: torch.nn.Module, eps: float) -> torch.nn.Module:
    """Scale every weight by (1 + eps x N(0, 1)), a fixed draw, in place: a rounding-sized difference (eps 1e-6)
    such as another CPU's arithmetic makes. eps 0 leaves the model as it is. Returns the model."""
    if eps:
        g = torch.Generator().manual_seed(12345)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + eps * torch.randn(p.shape, generator=g).to(p.device))
    return model


def frozen_path(baseline: Path) -> Path:
    """``results/baselines/smoke.json`` -> ``results/baselines/smoke.frozen.pth``."""
    return Path(baseline).with_suffix(".frozen.pth")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_frozen(spec: dict, baseline: Path) -> torch.nn.Module:
    """The committed denoiser of ``spec`` (the baseline's ``instrument.frozen``), checked against its sha256."""
    from models import build_backbone

    path = Path(baseline).parent / spec["file"]
    if not path.is_file():
        raise BenchError(f"the baseline's frozen network {path} is missing; rewrite the baseline with "
                         "`bench check --update-baseline` from a finished run")
    if _sha256(path) != spec["sha256"]:
        raise BenchError(f"frozen network {path} differs from the sha256 its baseline records; restore it from git "
                         "or rewrite the baseline with `bench check --update-baseline`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_backbone(spec["backbone"], **spec["backbone_kwargs"])
        model.load_state_dict(state)
    except Exception as e:  # noqa: BLE001 - any failure means the file cannot be used
        raise BenchError(f"frozen network {path} cannot be loaded into {spec['backbone']} ({e})") from None
    return model.eval()


def measure(ctx, spec: dict, baseline: Path, sigmas: tuple[float, ...], seed: int,
            perturb: float = 0.0) -> dict[str, float]:
    """The instrument's values: reference rows and the frozen network's, at ``sigmas`` with test noise ``seed``, on
    the data and segmenter of ``ctx`` (a ``bench.runner.Context``).

    ``perturb``: multiply the frozen weights by (1 + perturb x N(0, 1)) first (a fixed draw; for the derivation)."""
    from bench.evaluate import evaluate, identity_restore

    model = perturb_weights(load_frozen(spec, baseline).to(ctx.device), perturb)
    rows = {"noisy input": evaluate(identity_restore, ctx.val, sigmas, seed, ctx.segmenter, ctx.device),
            f"frozen {spec['cell']}": evaluate(model.restore, ctx.val, sigmas, seed, ctx.segmenter, ctx.device),
            "clean input": evaluate(None, ctx.val, (), seed, ctx.segmenter, ctx.device)}
    values = {}
    for row, by_sigma in rows.items():
        for sigma, m in by_sigma.items():
            for metric in ("psnr", "ssim", "miou"):
                if math.isfinite(m[metric]) and not (row == "clean input" and metric == "ssim"):
                    values[f"instrument:{row}|{sigma}|{metric}"] = float(m[metric])
    return values


def data_digests(ctx) -> dict[str, str]:
    """sha256 of the decoded train and val splits of ``ctx`` (a ``bench.runner.Context``; pixels and labels, what
    training and scoring read), so that a check on another machine can say whether it trained and scored on the same
    data as its baseline."""
    out = {}
    for split, parts in (("train", (ctx.train_images, ctx.train_labels)), ("val", (ctx.val.images, ctx.val.labels))):
        h = hashlib.sha256()
        for part in parts:
            for i in range(len(part)):
                h.update(part[i].contiguous().numpy().tobytes())
        out[split] = h.hexdigest()
    return out


def compare_data(recorded: dict[str, str] | None, found: dict[str, str]) -> list[str]:
    """One line per split whose data differ from the baseline's (none when they match or none were recorded)."""
    return [f"the {split} data differ from the baseline's (decoded sha256 {found[split][:12]} against "
            f"{want[:12]}): this machine generated or decoded the suite differently, so its cells cannot match"
            for split, want in (recorded or {}).items() if found.get(split) != want]


def freeze_cell(results_folder: Path, cell: dict, slug: str, baseline: Path) -> dict:
    """Write the scored weights of a finished cell beside ``baseline``; returns the ``frozen`` spec."""
    from bench.cell_state import CHECKPOINT_FILE
    from bench.trained import load_trained_denoiser

    ckpt = results_folder / CHECKPOINT_FILE
    if not ckpt.is_file():
        raise BenchError(f"cell {slug} has no {CHECKPOINT_FILE} in {results_folder}: the instrument's frozen network "
                         "is taken from it; rerun the cell (`bench run --rerun`)")
    model = load_trained_denoiser(cell, ckpt)
    path = frozen_path(baseline)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return {"file": path.name, "sha256": _sha256(path), "cell": slug, "backbone": cell["backbone"],
            "backbone_kwargs": dict(cell.get("backbone_kwargs", ()))}


def build_section(suite, results: list[dict], results_root: Path, baseline: Path, cell_ids: set[str],
                  threads: tuple[int, ...] = (1, 2), log: Callable[[str], None] = print) -> dict:
    """The baseline's ``instrument`` section: freeze the first seed-0 cell of ``cell_ids``, measure the chain with
    each thread count and with rounding-sized perturbed weights, derive the tolerances from those spreads."""
    cells = sorted((r for r in results if r.get("kind") == "cell" and r["cell_id"] in cell_ids and r["seed"] == 0),
                   key=lambda r: r["slug"])
    if not cells:
        raise BenchError("no finished seed-0 cell to freeze for the instrument check; run the grid first")
    first = cells[0]
    folder = results_root / suite.name / f"{first['slug']}-{first['cell_id']}"
    spec = freeze_cell(folder, first["config"], first["slug"], baseline)
    sigmas = tuple(float(s) for s in first["config"]["test_sigmas"])
    seed = 0
    runs = []
    from bench.runner import Context

    ctx = Context(suite, "cpu", log=log)  # one set of data and one segmenter for every measurement
    previous = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(t)
            runs.append(measure(ctx, spec, baseline, sigmas, seed))
        torch.set_num_threads(max(threads))
        perturbed = measure(ctx, spec, baseline, sigmas, seed, perturb=PERTURBATION)
    finally:
        torch.set_num_threads(previous)
    values = runs[-1]
    data = data_digests(ctx)
    spread = {}
    for metric in RESOLUTION:
        keys = [k for k in values if k.endswith("|" + metric)]
        thread_diff = max((abs(a[k] - b[k]) for k in keys for i, a in enumerate(runs) for b in runs[i + 1:]),
                          default=0.0)
        perturb_diff = max(abs(perturbed[k] - values[k]) for k in keys)
        spread[metric] = {"thread_max_diff": thread_diff, "perturbed_max_diff": perturb_diff}
    tolerances = {m: max(RESOLUTION[m], math.ceil(3 * max(s.values()) * 1e6) / 1e6) for m, s in spread.items()}
    return {"frozen": spec, "sigmas": list(sigmas), "seed": seed, "values": values, "tolerances": tolerances,
            "data": data,
            "derivation": {"rule": "tolerance = max(3 x the largest difference between thread counts or from "
                                   f"weights perturbed by {PERTURBATION:g} (relative), the resolution)",
                           "threads": list(threads), "resolution": RESOLUTION, **{"spread": spread}}}
