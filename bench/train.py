"""Train one denoiser: a plain, seeded PyTorch loop that a killed run resumes exactly.

Every batch (images, crops, flips/transposes, noise levels and noise) is a pure function of
(seed, iteration), so resuming from a checkpoint of (model, optimiser, scheduler, iteration)
replays the very batches an uninterrupted run would have drawn.
"""
from __future__ import annotations

import contextlib
import functools
import io
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from bench import distributed
from bench.base.atomic import atomic_write_bytes
from bench.base.crops import crop_generator, random_crops
from bench.base.errors import BenchError, Interrupted, first_line  # noqa: F401 (Interrupted: raised here)
from bench.base.noise import draw_train_sigma, to_unit
from bench.config import TrainConfig
from bench.trained import CKPT_FORMAT, read_checkpoint
from losses.base import Objective
from models.base import Denoiser


class TrainingDiverged(BenchError):
    """The loss became NaN or infinite."""


CHECKPOINT_MINUTES = 10.0  # a checkpoint at least this often, whatever checkpoint_every says


class _StopSignals:
    """While active: SIGINT/SIGTERM only set ``received``, so training stops at an iteration boundary with a
    checkpoint. Installed in the main thread of a single-process run only (elsewhere the defaults stay)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and distributed.world() == 1:
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._note)
        return self

    def _note(self, signum, frame) -> None:
        self.received = signum

    def __exit__(self, *exc) -> None:
        import signal

        for s, handler in self._previous.items():
            signal.signal(s, handler)


def draw_batch(images: torch.Tensor, cfg: TrainConfig, seed: int, it: int, labels: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(clean (B, 3, c, c) in [0, 1], noisy, noise map (B,) on the 0-1 scale (Gaussian: the sigma) or (B, 1, c, c)
    (a per-pixel degradation, ``bench.degradations``), labels (B, c, c) int64 or None).

    images: (N, 3, H, W) uint8, all training images in memory; labels: (N, H, W) uint8 train ids.
    """
    g = crop_generator(seed, it)
    crops, labs = random_crops(images, labels, cfg.batch, cfg.crop, g)
    clean = to_unit(crops)
    level = draw_train_sigma(cfg.batch, cfg.sigma_max, g)
    noisy, noise_map = _degradation(cfg.degradation, cfg.degradation_params).draw_train(
        clean, level, g, exact=cfg.arithmetic == "exact")
    return clean, noisy, noise_map, (labs.long() if labs is not None else None)


@functools.lru_cache(maxsize=8)
def _degradation(name: str, params: tuple):
    from bench.degradations import build_degradation

    return build_degradation(name, params)


class TrainBatches(torch.utils.data.Dataset):
    """Item ``it`` is training batch ``it`` (``draw_batch``): a pure function of (seed, iteration), so a worker
    process draws exactly the batch the training process would have drawn."""

    def __init__(self, images: torch.Tensor, cfg: TrainConfig, seed: int, labels: torch.Tensor | None = None) -> None:
        self.images, self.cfg, self.seed, self.labels = images, cfg, seed, labels

    def __len__(self) -> int:
        return self.cfg.iterations

    def __getitem__(self, it: int):
        return draw_batch(self.images, self.cfg, self.seed, it, self.labels)


def _quiet_worker(_: int) -> None:
    """Loader workers leave SIGINT/SIGTERM to the training process, which checkpoints and then closes them."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def batch_stream(images: torch.Tensor, cfg: TrainConfig, seed: int, start: int, labels: torch.Tensor | None = None,
                 workers: int = 0, pin_memory: bool = False) -> Iterator:
    """The batches of iterations ``start .. cfg.iterations - 1`` in order: drawn here (``workers`` 0) or by a
    ``DataLoader`` with that many worker processes, a few batches ahead of the step (the same batches)."""
    batches = TrainBatches(images, cfg, seed, labels)
    if workers == 0:
        return (batches[it] for it in range(start, cfg.iterations))
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, cfg.iterations),
                                         num_workers=workers, prefetch_factor=4, pin_memory=pin_memory,
                                         worker_init_fn=_quiet_worker)
    return iter(loader)


def auto_loader_workers(device: torch.device) -> int:
    """Loader workers when not told: none on a CPU (the cores train), up to 4 per GPU process otherwise."""
    import os

    if device.type == "cpu":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores // max(distributed.world(), 1) - 1))


@dataclass
class TrainState:
    model: Denoiser
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: AveragedModel | None = None  # the weights evaluated when ``ema_decay`` > 0
    iteration: int = 0

    def evaluated_weights(self) -> dict[str, torch.Tensor]:
        """The state dict that is scored: the moving average's when there is one, else the last iterate's."""
        return (self.ema.module if self.ema is not None else self.model).state_dict()


def lr_factor(cfg: TrainConfig, it: int) -> float:
    """The learning rate of step ``it`` (0-based) as a fraction of ``cfg.lr``: linear warm-up over
    ``cfg.warmup`` of the iterations, then ``multistep`` halvings at the milestones or a ``cosine`` to 0. In exact
    arithmetic the cosine and the powers are ``bench.base.exact``'s (the C library's ``cos``/``pow`` may round otherwise)."""
    from bench.base import exact

    warm = round(cfg.warmup * cfg.iterations)
    if it < warm:
        return (it + 1) / warm
    if cfg.schedule == "cosine":
        span = max(cfg.iterations - warm, 1)
        if cfg.arithmetic == "exact":
            half_turns = torch.tensor([(it - warm) / span / 2.0], dtype=torch.float64)
            return 0.5 * (1.0 + float(exact.cos_2pi(half_turns)))
        return 0.5 * (1.0 + math.cos(math.pi * (it - warm) / span))
    milestones = sorted({max(1, round(f * cfg.iterations)) for f in cfg.milestones})
    passed = sum(it >= m for m in milestones)
    return exact.power(cfg.gamma, passed) if cfg.arithmetic == "exact" else cfg.gamma ** passed


def make_state(model: Denoiser, cfg: TrainConfig) -> TrainState:
    """Adam, its learning-rate schedule and the weights' moving average (with ``cfg.arithmetic`` "exact": their
    machine-independent versions, ``bench.base.exact``)."""
    if cfg.arithmetic == "exact":
        from bench.base.exact import ExactAdam, ema_exact

        opt = ExactAdam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
        averaging = {"avg_fn": ema_exact(cfg.ema_decay)}
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
        averaging = {"multi_avg_fn": get_ema_multi_avg_fn(cfg.ema_decay)}
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_factor(cfg, it))
    ema = AveragedModel(model, use_buffers=True, **averaging) if cfg.ema_decay > 0 else None
    return TrainState(model, opt, sched, ema)


def build_for_training(name: str, kwargs: dict, cfg: TrainConfig, seed: int) -> Denoiser:
    """The backbone ``name`` as a cell trains it: initialised after ``torch.manual_seed(seed)``, with the
    machine-independent samplers when ``cfg.arithmetic`` is "exact"."""
    from bench.base.exact import exact_init
    from models import build_backbone

    torch.manual_seed(seed)
    with exact_init() if cfg.arithmetic == "exact" else contextlib.nullcontext():
        return build_backbone(name, **kwargs)


def _exact_arithmetic_problems(cfg: TrainConfig, model: Denoiser, objective: Objective, world: int) -> str | None:
    """Why this training cannot run in exact arithmetic (None when it can, or is not asked to)."""
    if cfg.arithmetic != "exact":
        return None
    from bench.base.exact import unsupported

    if world > 1:
        return "arithmetic 'exact' trains in one process (a distributed gradient sum rounds in the order it arrives)"
    missing = unsupported(model, objective)
    if missing:
        return (f"arithmetic 'exact' needs every operation of the backbone and the objective to round alike on "
                f"every machine, and {', '.join(missing)} does not declare it (exact_arithmetic = True, after "
                "checking with tests/test_exact.py); use train.arithmetic=native for it")
    return None


def save_checkpoint(state: TrainState, path: Path, objective: Objective | None = None, extra: dict | None = None
                    ) -> None:
    buf = io.BytesIO()
    torch.save({"format": CKPT_FORMAT, "iteration": state.iteration, "model": state.model.state_dict(),
                "optimizer": state.optimizer.state_dict(), "scheduler": state.scheduler.state_dict(),
                **({"ema": state.ema.state_dict()} if state.ema is not None else {}),
                "evaluated": "ema" if state.ema is not None else "model",
                "objective": objective.train_state() if objective is not None else {},
                "torch_rng": torch.get_rng_state(), "extra": extra or {}}, buf)
    atomic_write_bytes(path, buf.getvalue())
    from bench.base.atomic import atomic_write_json

    # what `bench status` shows without loading the weights: the iteration a resume starts from
    atomic_write_json(checkpoint_note(path), {"iteration": state.iteration, "time": time.time()})


def checkpoint_note(path: Path) -> Path:
    """The small JSON beside a training checkpoint (``bench.cell_state.CHECKPOINT_NOTE`` for ``train.pth``): its
    iteration, for ``bench status``."""
    return Path(path).with_name(Path(path).name + ".json")


def load_checkpoint(state: TrainState, path: Path, objective: Objective | None = None) -> dict:
    try:
        ckpt = read_checkpoint(path)
        state.model.load_state_dict(ckpt["model"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        state.scheduler.load_state_dict(ckpt["scheduler"])
        if state.ema is not None:
            state.ema.load_state_dict(ckpt["ema"])
        if objective is not None:
            objective.load_train_state(ckpt.get("objective", {}))
        torch.set_rng_state(ckpt["torch_rng"])
    except Exception as e:  # noqa: BLE001 - any failure means the file cannot be trusted
        raise BenchError(f"training checkpoint {path} is corrupt or incompatible ({first_line(e)}); "
                         "delete it to retrain the cell from scratch") from None
    state.iteration = int(ckpt["iteration"])
    return ckpt.get("extra", {})


def train(model: Denoiser, objective: Objective, images: torch.Tensor, cfg: TrainConfig, seed: int,
          ckpt_path: Path, device: torch.device, log: Callable[[str], None] = print,
          labels: torch.Tensor | None = None, progress: Callable[[int], None] | None = None,
          validate: Callable[[Denoiser], dict] | None = None, val_every: int = 0,
          checkpoint_minutes: float = CHECKPOINT_MINUTES, loader_workers: int | None = None) -> dict:
    """Train ``model`` in place up to ``cfg.iterations``; resume from ``ckpt_path`` if it exists. On return
    ``model`` holds the weights that are scored: the moving average's when ``cfg.ema_decay`` > 0.

    ``cfg.precision`` "bf16" runs the forward pass under bf16 autocast with channels_last tensors;
    "auto" must be resolved by the caller (``bench.precision``).
    With ``validate`` and ``val_every``, ``validate(denoiser)`` (the scored weights in eval mode, no grad) is
    recorded every ``val_every`` iterations as the validation curve (kept in the checkpoint, so a resumed run
    has it whole).

    A checkpoint is written every ``cfg.checkpoint_every`` iterations and at least every ``checkpoint_minutes``;
    SIGINT or SIGTERM stops training at the end of the current iteration, writes a checkpoint and raises
    ``Interrupted`` (a resumed run replays the same batches: they depend on (seed, iteration) alone).
    ``loader_workers`` processes draw the batches ahead of the step (None: ``auto_loader_workers``); the
    batches, and so the weights, are the same for any number.

    Returns a summary: iterations done in this call, seconds, the last logged loss terms; in exact arithmetic also
    ``fingerprints``, {iteration: sha256 of the training weights} after steps 1, 10, 100 and the last
    (``bench.base.exact.fingerprint``), which another machine must reproduce bit for bit.
    """
    if cfg.precision == "auto":
        raise ValueError("precision 'auto' must be resolved to fp32 or bf16 before training (bench.precision)")
    if cfg.crop > min(images.shape[-2:]):  # never a smaller crop than the configuration (and the hash) say
        raise BenchError(f"training crop {cfg.crop} is larger than the train images ({images.shape[-2]}x"
                         f"{images.shape[-1]}): pass --set train.crop=N with N <= {min(images.shape[-2:])}")
    layout = torch.channels_last if cfg.bf16 else torch.contiguous_format
    torch.manual_seed(seed)
    uses_labels = getattr(objective, "uses_labels", False)
    if uses_labels and labels is None:
        raise BenchError(f"objective {type(objective).__name__} needs the training labels")
    model.to(device, memory_format=layout).train()
    objective.to(device).train()
    world, rank = distributed.world(), distributed.rank()
    if cfg.batch % world:
        raise BenchError(f"batch {cfg.batch} does not split over {world} processes")
    problem = _exact_arithmetic_problems(cfg, model, objective, world)
    if problem:
        raise BenchError(problem)
    exact = cfg.arithmetic == "exact"
    if exact:
        from bench.base.exact import clip_grad_norm_exact, exact_convolutions, fingerprint, fingerprint_steps
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    state = make_state(model, cfg)
    curve: list[dict] = []
    prints: dict[str, str] = {}  # exact arithmetic: {iteration: sha256 of the weights} (bench.base.exact.fingerprint)
    if ckpt_path.is_file():
        extra = load_checkpoint(state, ckpt_path, objective)
        curve, prints = list(extra.get("curve", [])), dict(extra.get("fingerprints", {}))
        log(f"resumed from {ckpt_path.name} at iteration {state.iteration}")
    start, t0 = state.iteration, time.time()
    workers = auto_loader_workers(device) if loader_workers is None else loader_workers
    stream = batch_stream(images, cfg, seed, start, labels if uses_labels else None, workers,
                          pin_memory=device.type == "cuda")
    with _StopSignals() as stop:  # SIGINT/SIGTERM: a checkpoint, then Interrupted
        last_save = time.monotonic()
        sums: dict[str, float] = {}
        last_terms: dict[str, float] = {}
        while state.iteration < cfg.iterations:
            it = state.iteration
            clean, noisy, sigma, crop_labels = next(stream)
            if world > 1:  # every rank drew the same batch; each trains on its slice, DDP averages the gradients
                clean, noisy, sigma = clean[rank::world], noisy[rank::world], sigma[rank::world]
                crop_labels = crop_labels[rank::world] if crop_labels is not None else None
            clean, noisy, sigma = (clean.to(device, memory_format=layout, non_blocking=True),
                                   noisy.to(device, memory_format=layout, non_blocking=True),
                                   sigma.to(device, non_blocking=True))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16), \
                    exact_convolutions() if exact else contextlib.nullcontext():
                restored = net(noisy, sigma) if world > 1 else model.restore(noisy, sigma)
                loss, terms = objective(restored, clean, {"sigma": sigma, "labels": crop_labels, "extras": model.extras()})
            loss = loss.float()
            if not math.isfinite(float(loss.detach())):
                raise TrainingDiverged(f"loss is {float(loss.detach())} at iteration {it + 1} (terms {terms}); "
                                       "lower the learning rate or the objective's weights")
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                (clip_grad_norm_exact if exact else torch.nn.utils.clip_grad_norm_)(model.parameters(), cfg.grad_clip)
            state.optimizer.step()
            state.scheduler.step()
            if state.ema is not None:
                state.ema.update_parameters(model)
            state.iteration += 1
            if exact and state.iteration in fingerprint_steps(cfg.iterations):
                prints[str(state.iteration)] = fingerprint(model)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            if progress:
                progress(state.iteration)
            n_log = min(50, cfg.iterations)
            if state.iteration % n_log == 0 or state.iteration == cfg.iterations:
                k = (state.iteration - 1) % n_log + 1
                last_terms = {name: s / k for name, s in sums.items()}
                sums = {}
                log(f"iter {state.iteration}/{cfg.iterations} " + " ".join(f"{n} {v:.5f}" for n, v in last_terms.items())
                    + f" lr {state.scheduler.get_last_lr()[0]:.2e}")
            if validate and val_every and distributed.is_main() and (
                    state.iteration % val_every == 0 or state.iteration == cfg.iterations):
                scored = state.ema.module if state.ema is not None else model
                scored.eval()
                with torch.no_grad():
                    point = {"iteration": state.iteration, **validate(scored)}
                scored.train()
                curve.append(point)
                log("validation " + " ".join(f"{k} {v:.4f}" for k, v in point.items() if k != "iteration"))
            due = time.monotonic() - last_save >= 60.0 * checkpoint_minutes
            if state.iteration % cfg.checkpoint_every == 0 or state.iteration == cfg.iterations or due or stop.received:
                if distributed.is_main():
                    save_checkpoint(state, ckpt_path, objective, extra={"curve": curve, "fingerprints": prints})
                distributed.barrier()
                last_save = time.monotonic()
            if stop.received:
                import signal

                name = signal.Signals(stop.received).name
                log(f"{name}: stopped at iteration {state.iteration}, checkpoint written")
                raise Interrupted(f"{name} at iteration {state.iteration}/{cfg.iterations}: checkpoint {ckpt_path} "
                                  "written; `bench run` resumes the cell from it", stop.received)
    if state.ema is not None:
        model.load_state_dict(state.evaluated_weights())
    model.eval()
    return {"iterations_run": state.iteration - start, "resumed_from": start, "seconds": round(time.time() - t0, 2),
            "loader_workers": workers, "final_terms": last_terms, **({"curve": curve} if curve else {}),
            **({"fingerprints": prints} if exact else {})}
