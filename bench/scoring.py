"""Score a restorer that was not trained here: a network with weights from elsewhere (``--model --weights``), or a
folder of restored images made by any tool (``--restored``), with the same measuring chain as a cell: the suite's
val images, its fixed test degradation, uint8 quantisation, the chosen metrics and the frozen segmenter.

``write_noisy`` writes the exact test inputs a cell's restorer receives (float32, not clipped or quantised, one
``.npy`` per image and level, with the noise map where the degradation has a per-pixel one) and a manifest of their
sha256, so another framework can restore them; ``RestoredFolder`` reads its outputs back as PNGs, one per input,
matched by file name: ``<level>/<image id>.png``.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bench.base.atomic import atomic_write_bytes, atomic_write_json, sha256_file
from bench.base.errors import BenchError, first_line, unpickler_reason
from bench.base.noise import to_unit
from bench.config import is_paper_noise

NOISY_MANIFEST = "manifest.json"
WRAPPERS = ("state_dict", "model", "params")  # keys a checkpoint may wrap its state dict in


def level_dir(level: float) -> str:
    return f"{float(level):g}"


def write_noisy(out: Path, val, levels: Iterable[float], seed: int, degradation, description: dict) -> Path:
    """Every val image's test input at each level under ``out/<level>/<image id>.npy`` (float32 (3, H, W)), the
    per-pixel noise map beside it as ``<image id>.map.npy`` where the degradation has one, and ``manifest.json``
    (what they are, the sha256 of each file). Returns the manifest's path."""
    from bench.evaluate import input_generator

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BenchError(f"--out {out} " + ("is not a folder" if not out.is_dir() else "is not empty: stale inputs "
                         "would stay beside the new ones") + "; give a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"--out {out} cannot be created ({e.strerror or e}); give a writable folder") from None
    files, levels_map = {}, {}
    for level in levels:
        folder = out / level_dir(level)
        folder.mkdir(parents=True, exist_ok=True)
        scalar = {}
        for i, sample in enumerate(val.samples):
            clean = to_unit(val[i][0])
            noisy, noise_map = degradation.draw_test(clean, level, input_generator(sample.image_id, level, seed))
            for suffix, array in ((".npy", noisy), (".map.npy", noise_map if noise_map.dim() == 3 else None)):
                if array is None:
                    continue
                buf = _npy_bytes(array.float().numpy())
                path = folder / f"{sample.image_id}{suffix}"
                atomic_write_bytes(path, buf)
                files[str(path.relative_to(out))] = hashlib.sha256(buf).hexdigest()
            if noise_map.dim() == 0:
                scalar[sample.image_id] = float(noise_map)
        levels_map[level_dir(level)] = scalar
    manifest = out / NOISY_MANIFEST
    atomic_write_json(manifest, {**description, "seed": seed, "levels": [level_dir(s) for s in levels],
                                 "format": "float32 (3, H, W) RGB in about [0, 1], not clipped or quantised: the exact "
                                           "input of a cell's restorer; <id>.map.npy: its (1, H, W) noise std map",
                                 "expected_outputs": "<level>/<image id>.png, 8-bit RGB of the input's size",
                                 "noise_level": levels_map, "sha256": files})
    return manifest


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class RestoredFolder:
    """The outputs of an outside restorer, ``root/<level>/<image id>.png``, checked against the val images before
    anything is scored: a missing, extra, mis-sized, non-RGB or undecodable file is a one-line error naming it.
    ``for_images(ids, level)`` -> (B, 3, H, W) float in [0, 1] (the PNG's bytes over 255)."""

    def __init__(self, root: Path, val, levels: Iterable[float]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BenchError(f"--restored {self.root} is not a folder (expected <level>/<image id>.png, as `bench "
                             "noisy` lays out the inputs)")
        from bench.evaluate import image_shape

        sizes = {s.image_id: image_shape(val, i)[-2:] for i, s in enumerate(val.samples)}
        for level in levels:
            folder = self.root / level_dir(level)
            found = {p.name for p in folder.glob("*")} if folder.is_dir() else set()
            want = {f"{i}.png" for i in sizes}
            missing, extra = sorted(want - found), sorted(found - want)
            if missing:
                raise BenchError(f"--restored {folder}: {len(missing)} of {len(want)} outputs missing ({missing[0]}"
                                 + (f", {missing[1]}" if len(missing) > 1 else "") + "); one PNG per noisy input")
            if extra:
                raise BenchError(f"--restored {folder}: {len(extra)} files that match no val image ({extra[0]}); "
                                 "remove them (names are <image id>.png)")
            for image_id, (h, w) in sizes.items():
                path = folder / f"{image_id}.png"
                try:
                    with Image.open(path) as im:
                        mode, size, fmt = im.mode, im.size, im.format
                except (OSError, UnidentifiedImageError) as e:
                    raise BenchError(f"--restored {path} cannot be decoded ({first_line(e)})") from None
                if fmt != "PNG" or mode != "RGB":
                    raise BenchError(f"--restored {path} is a {fmt} of mode {mode}; expected an 8-bit RGB PNG")
                with open(path, "rb") as f:
                    depth = f.read(26)[24:25]  # IHDR's bit depth: Pillow opens 16-bit RGB as "RGB", high bytes only
                if depth != b"\x08":
                    raise BenchError(f"--restored {path} has {depth[0] if depth else '?'} bits per channel; expected an "
                                     "8-bit RGB PNG (what a cell's output is quantised to)")
                if size != (w, h):
                    raise BenchError(f"--restored {path} is {size[0]}x{size[1]}, its input {w}x{h}")

    def for_images(self, ids: list[str], level: float) -> torch.Tensor:
        out = []
        for image_id in ids:
            path = self.root / level_dir(level) / f"{image_id}.png"
            try:
                with Image.open(path) as im:
                    out.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1))
            except (OSError, UnidentifiedImageError) as e:
                raise BenchError(f"--restored {path} cannot be decoded ({first_line(e)})") from None
        return to_unit(torch.stack(out))

    def fingerprint(self) -> str:
        """sha256 over the files' names and bytes: what a scored result records as its source."""
        h = hashlib.sha256()
        for path in sorted(self.root.rglob("*.png")):
            h.update(str(path.relative_to(self.root)).encode() + b"\0" + bytes.fromhex(sha256_file(path)))
        return h.hexdigest()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors from a checkpoint written elsewhere, loaded with ``weights_only=True``: a
    ``state_dict`` / ``model`` / ``params`` wrapper and a ``module.`` prefix (DataParallel) are recognised; this
    bench's own ``train.pth`` gives the weights its cell was scored with. Any other layout: one line with the keys."""
    from bench.trained import CKPT_FORMAT, scored_weights

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"--weights {path} " + ("is a folder, not a checkpoint file" if path.is_dir()
                                                 else "does not exist"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note on the pickle protocol would be lines above the error
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file cannot be used as given
        raise BenchError(f"--weights {path} cannot be loaded with weights_only=True ({unpickler_reason(e)}): not a "
                         "tensors-only checkpoint (save the model's state_dict() with torch.save)") from None
    if isinstance(obj, dict) and obj.get("format") == CKPT_FORMAT and "model" in obj:
        try:
            obj = scored_weights(obj)
        except (KeyError, AttributeError, TypeError) as e:
            raise BenchError(f"--weights {path} is a damaged training checkpoint ({type(e).__name__}: {e})") from None
    for _ in range(2):
        if isinstance(obj, dict) and not _tensors_only(obj):
            inner = [k for k in WRAPPERS if isinstance(obj.get(k), dict)]
            if inner:
                obj = obj[inner[0]]
    if not isinstance(obj, dict) or not obj or not _tensors_only(obj):
        keys = sorted(map(str, obj))[:6] if isinstance(obj, dict) else type(obj).__name__
        raise BenchError(f"--weights {path}: not a state dict of tensors, nor one wrapped in "
                         f"{', '.join(WRAPPERS)} (found {keys})")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _tensors_only(d: dict) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def build_model(spec: str, params: dict):
    """A registered backbone name, ``pkg.module:Class`` or ``path/to/file.py:Class``, built with ``params``."""
    if re.search(r"\.py:[A-Za-z_]", spec):
        file, _, name = spec.rpartition(":")
        path = Path(file)
        if not path.is_file():
            raise BenchError(f"--model {spec}: {path} does not exist")
        from bench import plugins

        try:  # as a plugin: imported once per process, whether a grid file names it too or not
            canonical = plugins.load_plugin(str(path))
        except BenchError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's file: say which and why
            raise BenchError(f"--model {spec}: importing {path} failed ({type(e).__name__}: {first_line(e)})") from None
        import sys

        module = sys.modules[plugins.module_name(canonical)]
        cls = getattr(module, name, None)
        if cls is None:
            raise BenchError(f"--model {spec}: {path} defines no {name!r}")
        if not isinstance(cls, type):
            raise BenchError(f"--model {spec}: {name} is a {type(cls).__name__}, not a class")
        try:
            model = cls(**params)
        except (TypeError, ValueError) as e:
            raise BenchError(f"--model {spec}: {name}({', '.join(params)}) failed ({type(e).__name__}: {e}); check "
                             "--model-params") from None
    else:
        from models import build_backbone

        try:
            model = build_backbone(spec, **params)
        except (TypeError, ValueError) as e:
            raise BenchError(f"--model {spec}: building it with {params} failed ({type(e).__name__}: {first_line(e)}); "
                             "check --model-params") from None
    if not isinstance(model, torch.nn.Module):
        raise BenchError(f"--model {spec} builds a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_model(spec: str, params: dict, weights: Path) -> torch.nn.Module:
    """``build_model`` with the weights of ``weights`` loaded strictly, in eval mode."""
    model = build_model(spec, params)
    state = read_weights(weights)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        parts = ([f"missing {len(missing)} ({missing[0]})"] if missing else []) + (
            [f"unexpected {len(unexpected)} ({unexpected[0]})"] if unexpected else [])
        raise BenchError(f"--weights {weights} do not fit --model {spec}: keys " + ", ".join(parts)
                         + "; check --model and --model-params")
    wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        raise BenchError(f"--weights {weights} do not fit --model {spec}: {k} has shape {tuple(state[k].shape)}, the "
                         f"model's is {tuple(own[k].shape)} ({len(wrong)} of {len(own)} tensors differ); check "
                         "--model-params")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise BenchError(f"--weights {weights} do not fit --model {spec}: {first_line(e)}") from None
    return model.eval()


def restore_fn(model: torch.nn.Module, what: str = "--model"):
    """The model's ``restore(noisy, sigma)``, or its forward with those two arguments; a call that fails (a forward
    of another signature, a shape it cannot take) is one line naming ``what``."""
    restore = getattr(model, "restore", None)
    call = restore if callable(restore) else (lambda noisy, sigma: model(noisy, sigma))

    def checked(noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        try:
            return call(noisy, sigma)
        except (TypeError, RuntimeError, ValueError, AttributeError) as e:
            raise BenchError(f"{what}: restore(noisy (B, 3, H, W), sigma (B,)) failed ({type(e).__name__}: "
                             f"{first_line(e)})") from None

    return checked


def scored_id(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def safe_name(name: str) -> str:
    """A row name as a folder name: letters, digits, '.', '_', '-', the rest as '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "scored"


def noisy_identity(settings: ScoreSettings, suite: str) -> dict:
    """What ``bench noisy``'s manifest says its inputs are for, and ``check_noisy_manifest`` compares: the suite,
    levels, seed, degradation and protocol."""
    name, params = settings.scored_degradation
    return {"suite": suite, "levels": [level_dir(s) for s in settings.test_sigmas], "seed": settings.seed,
            "degradation": [name, dict(params)], "protocol": settings.protocol}


def check_noisy_manifest(folder: Path, settings: ScoreSettings, suite: str) -> str:
    """That ``bench noisy``'s manifest in ``folder`` was written for these test settings (suite, levels, seed,
    degradation, protocol): the restored PNGs are then scored on the inputs they were made from. Returns the
    manifest's sha256; a mismatch is one line naming the field."""
    path = Path(folder) / NOISY_MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"--noisy {folder} has no {NOISY_MANIFEST}: give the folder `bench noisy --out` wrote") from None
    except (OSError, ValueError) as e:
        raise BenchError(f"--noisy {path} is unreadable ({first_line(e)}); write it again with `bench noisy`") from None
    for key, value in noisy_identity(settings, suite).items():
        got = manifest.get(key) if isinstance(manifest, dict) else None
        if json.dumps(got, sort_keys=True) != json.dumps(value, sort_keys=True):
            raise BenchError(f"--noisy {path}: its inputs were written for {key} {got!r}, this score is for {value!r}: "
                             "pass the same --grid / --set / --seed as to `bench noisy`")
    return sha256_file(path)


class ScoreSettings:
    """The test settings a scored restorer is measured at: levels, the test-noise seed, protocol, degradation (what
    ``bench.runner.Context.score`` reads of a cell)."""

    def __init__(self, test_sigmas: tuple[float, ...], seed: int, protocol: str, degradation: tuple[str, tuple],
                 precision: str = "fp32"):
        self.test_sigmas, self.seed, self.protocol = tuple(test_sigmas), int(seed), protocol
        self.scored_degradation = degradation
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision {precision!r}: expected fp32 or bf16")
        self.precision = precision  # the restorer's: "bf16" restores under bf16 autocast, channels_last, as a bf16 cell

    @classmethod
    def of_grid(cls, grid, suite: str, seed: int = 0, precision: str = "fp32") -> ScoreSettings:
        cell = grid.row_cells(suite)[0]
        return cls(cell.test_sigmas, seed, cell.protocol, cell.scored_degradation, precision)

    def to_dict(self, suite: str) -> dict:
        name, params = self.scored_degradation
        return {"suite": suite, "test_sigmas": list(self.test_sigmas), "seed": self.seed, "protocol": self.protocol,
                **({"test_degradation": name, "test_degradation_params": [list(p) for p in params]}
                   if not is_paper_noise(name, params) else {}),
                **({"precision": self.precision} if self.precision != "fp32" else {})}

    def prepared(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in the memory layout a cell of this precision restores with (channels_last under bf16)."""
        return model.to(memory_format=torch.channels_last) if self.precision == "bf16" else model


def score(ctx, restore, settings: ScoreSettings, name: str, source: dict, results_root: Path,
          skip_existing: bool = False) -> Path | None:
    """Score ``restore`` (a restore function or a ``RestoredFolder``) with ``ctx`` (a ``bench.runner.Context``) and
    write its result file, ``<results>/<suite>/scored-<name>-<id>/result.json``; the id digests the source, the
    test settings, the metrics and the evaluator, so scoring the same thing again replaces its own file and nothing
    else. Returns the file; None when ``skip_existing`` and a readable result of this id is there already."""
    import time

    from bench.environment import environment
    from bench.results import ScoredResult, write_result
    from bench.runner import _now

    config = settings.to_dict(ctx.suite.name)
    sid = scored_id({"name": name, "source": source, "config": config, "metrics": list(ctx.metrics),
                     "evaluation": ctx.evaluation.get("key")})
    base = Path(results_root) / ctx.suite.name
    folder = base / f"scored-{safe_name(name)}-{sid}"
    if skip_existing and read_result_quietly(folder / "result.json").get("scored_id") == sid:
        return None
    others = [p.name for p in _same_name(base, name) if p != folder
              and (read_result_quietly(p / "result.json").get("evaluation") or {}).get("key") == ctx.evaluation.get("key")]
    if others:  # one row per name and evaluator: a second would make the folder unreportable
        raise BenchError(f"a scored result named {name!r} with other settings is already in {base} ({others[0]}): "
                         "give this one another --name, or delete that folder")
    t0 = time.time()
    metrics = ctx.score(restore, settings, amp=settings.precision == "bf16")
    folder.mkdir(parents=True, exist_ok=True)
    return write_result(folder, ScoredResult(
        scored_id=sid, name=name, source=source, config=config, metrics=metrics,
        weights={"segmenter": ctx.weights["segmenter"], **({"lpips": ctx.weights["lpips"]} if "lpips" in ctx.weights
                                                            else {})},
        env=environment(str(ctx.device)), created=_now(), eval_seconds=round(time.time() - t0, 2),
        evaluation=ctx.evaluation, metric_info=ctx.metric_info()))


def _same_name(base: Path, name: str) -> list[Path]:
    pattern = re.compile(re.escape(f"scored-{safe_name(name)}-") + r"[0-9a-f]{12}")
    return [p for p in base.glob("scored-*") if pattern.fullmatch(p.name) and (p / "result.json").is_file()]


def read_result_quietly(path: Path) -> dict:
    """A result file's JSON, or {} when unreadable (the reader that matters validates it later)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def from_cell(folder: Path):
    """(model, settings, source, name) of a finished cell's folder: its scored weights, its own test settings (levels,
    seed, protocol, degradation), what a re-scored result records as its source, and its slug as the row name."""
    from bench.cell_state import CHECKPOINT_FILE
    from bench.config import cell_from_dict
    from bench.results import RESULT_FILE, read_result
    from bench.trained import load_trained_denoiser

    folder = Path(folder)
    if not (folder / RESULT_FILE).is_file():
        raise BenchError(f"--cell {folder} holds no {RESULT_FILE}: give a finished cell's folder")
    cell = read_result(folder / RESULT_FILE)
    if cell["kind"] != "cell":
        raise BenchError(f"--cell {folder} is a {cell['kind']} result, not a trained cell's")
    model = load_trained_denoiser(cell["config"], folder / CHECKPOINT_FILE)
    c = cell_from_dict(cell["config"])
    settings = ScoreSettings(c.test_sigmas, c.seed, c.protocol, c.scored_degradation, c.train.precision)
    model = settings.prepared(model)  # restored as the cell restored: its precision, its layout
    source = {"kind": "cell", "cell_id": cell["cell_id"], "slug": cell["slug"],
              "weights_sha256": sha256_file(folder / CHECKPOINT_FILE)}
    return model, settings, source, cell["slug"]
