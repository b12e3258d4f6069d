"""The canonical configuration of one grid cell, and its address (hash + readable slug)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

PAPER_DEGRADATION = "gaussian"  # the paper's: additive white Gaussian noise (bench.degradations' default)


def is_paper_noise(name: str, params: object = ()) -> bool:
    """Whether a degradation (name, params) is the paper's Gaussian noise, which hashes, slugs, table groups and
    folder names leave unmarked (so cells measured before degradations existed keep them)."""
    return name == PAPER_DEGRADATION and not params


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of one denoiser (the paper's: Adam 1e-4, MultiStepLR x0.5 at 20/40/60/80 %)."""

    iterations: int = 1000
    batch: int = 8
    crop: int = 64
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    milestones: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)  # fractions of ``iterations``
    gamma: float = 0.5
    sigma_max: float = 75.0  # training sigma ~ U(0, sigma_max) on the 0-255 scale
    checkpoint_every: int = 100
    schedule: str = "multistep"  # "multistep" (milestones, gamma) or "cosine" (to 0 at the last iteration)
    warmup: float = 0.0  # linear learning-rate warm-up over this fraction of ``iterations``
    grad_clip: float = 0.0  # clip the global gradient norm to this (0: off)
    ema_decay: float = 0.0  # evaluate an exponential moving average of the weights (0: the last iterate)
    precision: str = "fp32"  # "fp32", "bf16" (autocast + channels_last) or "auto" (resolved per machine)
    arithmetic: str = "native"  # "native" or "exact": the same bits on every machine (bench.base.exact; fp32 only)
    degradation: str = PAPER_DEGRADATION  # what training adds to the clean crops (bench.degradations), level ~ U(0, sigma_max)
    degradation_params: tuple[tuple[str, object], ...] = ()  # its parameters over its registered defaults

    @property
    def bf16(self) -> bool:
        """Train and restore under bf16 autocast with channels_last tensors ("auto" must be resolved first)."""
        return self.precision == "bf16"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        if self.arithmetic not in ARITHMETICS:
            raise ValueError(f"arithmetic {self.arithmetic!r}: expected one of {', '.join(ARITHMETICS)}")
        if self.arithmetic == "exact" and self.precision == "bf16":
            raise ValueError("arithmetic 'exact' trains in fp32: precision must be fp32 (or auto, which it decides)")
        if not (0.0 <= self.warmup < 1.0 and 0.0 <= self.ema_decay < 1.0 and self.grad_clip >= 0.0):
            raise ValueError("warmup and ema_decay must be in [0, 1), grad_clip >= 0")
        for name in ("iterations", "batch", "crop", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {v!r}")
        if not isinstance(self.degradation, str) or not self.degradation:
            raise ValueError(f"degradation must be a registered degradation's name, not {self.degradation!r}")
        if self.arithmetic == "exact" and self.degradation != PAPER_DEGRADATION:
            raise ValueError(f"arithmetic 'exact' trains with the gaussian degradation only, not {self.degradation!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, not {self.lr!r}")
        if not (math.isfinite(self.sigma_max) and 0 < self.sigma_max <= 255):
            raise ValueError(f"sigma_max must be in (0, 255] (the 0-255 scale), not {self.sigma_max!r}")
        if not (math.isfinite(self.gamma) and self.gamma > 0):
            raise ValueError(f"gamma must be a finite number > 0, not {self.gamma!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), not {self.betas!r}")
        if not all(0.0 < m <= 1.0 for m in self.milestones):
            raise ValueError(f"milestones must be fractions of the iterations in (0, 1], not {self.milestones!r}")


SCHEDULES = ("multistep", "cosine")
PRECISIONS = ("fp32", "bf16", "auto")
ARITHMETICS = ("native", "exact")
# The revision of bench.base.exact's operations, part of an exact cell's identity: revision 2 made square roots, normal
# draws, SSIM's window and average pooling exact on every CPU (revision 1, unnamed in the hash, used MKL's sqrt).
EXACT_REVISION = 2


@dataclass(frozen=True)
class CellConfig:
    suite: str
    backbone: str
    objective: str
    train: TrainConfig = field(default_factory=TrainConfig)
    test_sigmas: tuple[float, ...] = (25.0, 35.0, 50.0)
    seed: int = 0
    backbone_kwargs: tuple[tuple[str, object], ...] = ()
    objective_kwargs: tuple[tuple[str, object], ...] = ()
    protocol: str = "ours"  # measurement protocol (bench.protocol): "ours" or "authors"
    # what tells this cell from another of its grid with the same backbone, objective and parameters (set by
    # ``Grid.cells`` where two would share a slug: "train.iterations=300"); in the slug, the label and the hash
    variant: tuple[str, ...] = ()
    # the degradation of the test inputs when it is not the training one ("": the training degradation)
    test_degradation: str = ""
    test_degradation_params: tuple[tuple[str, object], ...] = ()

    def to_dict(self) -> dict:
        """The configuration as JSON; the default protocol, arithmetic and degradation are left out, so cells
        measured before they existed keep their hash. Exact cells name the revision of exact arithmetic that trains
        them."""
        d = json.loads(json.dumps(asdict(self)))
        if d["protocol"] == "ours":
            del d["protocol"]
        if not d["variant"]:
            del d["variant"]
        if is_paper_noise(d["train"]["degradation"], d["train"]["degradation_params"]):
            del d["train"]["degradation"], d["train"]["degradation_params"]
        if not d["test_degradation"]:
            del d["test_degradation"], d["test_degradation_params"]
        if d["train"]["arithmetic"] == "native":
            del d["train"]["arithmetic"]
        else:
            d["train"]["exact_revision"] = EXACT_REVISION
        return d

    def cell_hash(self) -> str:
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    @property
    def scored_degradation(self) -> tuple[str, tuple]:
        """(name, params) of the degradation the test inputs have."""
        if self.test_degradation:
            return self.test_degradation, self.test_degradation_params
        return self.train.degradation, self.train.degradation_params

    def degradation_tag(self) -> str:
        """"" for the paper's Gaussian noise, else "@<train>" or "@<train>-to-<test>" (with parameters)."""
        def name(n: str, params: tuple) -> str:
            return n.replace(":", ".") + "".join(f"-{k}={v}" for k, v in params)

        if is_paper_noise(self.train.degradation, self.train.degradation_params) and is_paper_noise(
                *self.scored_degradation):
            return ""
        train = name(self.train.degradation, self.train.degradation_params)
        test = name(*self.scored_degradation)
        return f"@{train}" + (f"-to-{test}" if test != train else "")

    def slug(self) -> str:
        """Readable address: backbone__objective[-param=value for non-default parameters][@degradation]__s<seed>
        (a dotted path's ``:`` as ``.``)."""
        name = f"{self.backbone}__{self.objective}".replace(":", ".")
        variant = "".join(f"-{v}" for v in self.variant).replace("/", "_")
        changed = "".join(f"-{k}={v}" for k, v in self.changed_params())
        return f"{name}{changed}{variant}{self.degradation_tag()}".replace("/", "_") + f"__s{self.seed}"

    def label(self) -> str:
        """The table row's name: the objective with its non-default parameters, "d2sm (queue_size=128)"; trained on
        another degradation than it is scored on: "l1 (trained on gaussian)"."""
        changed = [f"{k}={v}" for k, v in self.changed_params()] + list(self.variant)
        if self.test_degradation and self.scored_degradation != (self.train.degradation, self.train.degradation_params):
            changed.append(f"trained on {self.train.degradation}")
        return self.objective + (" (" + ", ".join(changed) + ")" if changed else "")

    def group(self) -> str:
        """The table group of the cell (``group_of``)."""
        return group_of(self.to_dict())

    def changed_params(self) -> list[tuple[str, object]]:
        """The objective parameters that differ from the defaults registered now (sorted)."""
        from losses.registry import OBJECTIVES, objective_params

        if self.objective not in OBJECTIVES:
            return []
        defaults = objective_params(self.objective)
        return sorted((k, v) for k, v in self.objective_kwargs if k in defaults and freeze(defaults[k]) != v)

    def dirname(self) -> str:
        return f"{self.slug()}-{self.cell_hash()}"


def group_of(config: dict) -> str:
    """The table group of a cell from its configuration (``CellConfig.to_dict``): its backbone, with
    " @ <test degradation>(params)" when the test inputs are not the paper's Gaussian noise; rows scored on other
    inputs are never compared with each other."""
    train = config.get("train") or {}
    if config.get("test_degradation"):
        name, params = config["test_degradation"], config.get("test_degradation_params") or []
    else:
        name, params = train.get("degradation", PAPER_DEGRADATION), train.get("degradation_params") or []
    if is_paper_noise(name, params):
        return config["backbone"]
    return f"{config['backbone']} @ {name}" + ("(" + ", ".join(f"{k}={v}" for k, v in params) + ")" if params else "")


def freeze(v: object) -> object:
    """Lists (as JSON gives them back) -> tuples, recursively: configurations stay hashable."""
    return tuple(freeze(x) for x in v) if isinstance(v, list | tuple) else v


def train_from_dict(t: dict) -> TrainConfig:
    """A ``TrainConfig`` from its JSON (``CellConfig.to_dict``'s ``train``; its ``exact_revision`` is not a field)."""
    fields = {k: v for k, v in t.items() if k != "exact_revision"}
    return TrainConfig(**{**fields, "betas": tuple(t["betas"]), "milestones": tuple(t["milestones"]),
                          "degradation_params": freeze(t.get("degradation_params", ()))})


def cell_from_dict(d: dict) -> CellConfig:
    train = train_from_dict(d["train"])
    return CellConfig(suite=d["suite"], backbone=d["backbone"], objective=d["objective"], train=train,
                      test_sigmas=tuple(d["test_sigmas"]), seed=d["seed"],
                      backbone_kwargs=freeze(d.get("backbone_kwargs", ())),
                      objective_kwargs=freeze(d.get("objective_kwargs", ())), protocol=d.get("protocol", "ours"),
                      variant=tuple(d.get("variant", ())), test_degradation=d.get("test_degradation", ""),
                      test_degradation_params=freeze(d.get("test_degradation_params", ())))
