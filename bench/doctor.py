"""``python -m bench doctor``: what a suite needs for a grid, what was found (with checksums), what to do.

Nothing is downloaded, and nothing trained but exact arithmetic's 12-step self-test (seconds, `bench.exact_selftest`);
every missing piece comes with the command that provides it.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.base.atomic import sha256_file
from bench.base.errors import BenchError

Check = tuple[str, Callable[[], str]]  # (what, probe returning what was found; raises BenchError if missing)


def _needs(grid, suite: str) -> set[str]:
    """What the objectives of ``grid`` (a Grid, or anything ``get_grid`` takes) need from ``suite``."""
    from bench.grids import get_grid
    from losses.registry import objective_needs

    grid = get_grid(grid) if isinstance(grid, str) else grid
    needs: set[str] = set()
    for c in grid.cells(suite):
        needs |= objective_needs(c.objective)
    return needs


def _file(path) -> str:
    return f"{path} (sha256 {sha256_file(path)[:16]}...)"


def _environment() -> str:
    import torch

    from seg_eval import mmcv_compat

    cuda = f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s)" if torch.cuda.is_available() else "no CUDA"
    mmcv = "mmcv-lite + compat (pure-PyTorch models only)" if mmcv_compat.LITE else "full mmcv (compiled ops)"
    return f"torch {torch.__version__}, {cuda}; {mmcv}"


def synthcity_checks(opts, needs: set[str]) -> list[Check]:
    from bench.suites import SynthcitySuite
    from bench.synthcity.dataset import _complete

    suite = SynthcitySuite(opts)

    def data() -> str:
        from bench.paths import cache_root
        from bench.synthcity.dataset import verify

        out = (opts.data_root or cache_root() / "synthcity") / suite.spec.key()
        if not _complete(out, suite.spec):
            return f"not generated yet: the first run makes it in ~10 s ({out})"
        verify(out)  # every file against its manifest's sha256, as a run does
        return f"{out} (every file matches its sha256)"

    def segmenter() -> str:
        found = suite.locate_segmenter()
        if found is None:
            return (f"{suite.evaluator_name} absent: `{suite.prepare_command.replace(' --force', '')}` trains it "
                    "(~9 min on 2 cores; automatic on first run)")
        return f"{suite.evaluator_name}: {_file(found[0])}, clean mIoU {found[1].get('clean_miou')}"

    def features() -> str:
        found = suite.feature_weights().locate()
        if found is None:
            return "absent: `python -m bench prepare --only features` trains it (~5 min; automatic on first use)"
        return f"{_file(found[0])}, val macro F1 {found[1].get('val_macro_f1')}"

    checks = [("environment", _environment), ("data", data), ("evaluator", segmenter)]
    if needs & {"features", "lpips"}:
        checks.append(("feature network (VGG19 topology, embedded)", features))
    return checks


def cityscapes_checks(opts, needs: set[str]) -> list[Check]:
    from pathlib import Path

    from losses.pretrained import resolve_torchvision_weights

    def data() -> str:
        from bench.cityscapes import validate

        if not opts.data_root:
            raise BenchError("no --data-root (or CITYSCAPES_DATASET): the folder holding leftImg8bit/ and gtFine/")
        from bench.base.data import check_split

        warnings: list[str] = []
        counts = validate(Path(opts.data_root), warnings.append, opts.label_root)
        for split in ("train", "val"):  # every label file, as a run reads it
            check_split(Path(opts.data_root), split, opts.label_root)
        return (f"{opts.data_root}: {counts['train']} train / {counts['val']} val, every label checked"
                + "".join(f"; {w}" for w in warnings))

    def config() -> str:
        from seg_eval.resolve import DEFAULT_CONFIG, resolve_config

        if not opts.seg_config:
            raise BenchError(f"no --seg-config; the documented default is {DEFAULT_CONFIG}")
        return str(resolve_config(opts.seg_config))

    def checkpoint() -> str:
        from seg_eval.resolve import resolve_checkpoint, resolve_config

        if not opts.seg_checkpoint:
            raise BenchError("no --seg-checkpoint: a file, a URL, or 'zoo' (then run with --allow-download once)")
        cfg = resolve_config(opts.seg_config) if opts.seg_config else None
        try:
            path = resolve_checkpoint(opts.seg_checkpoint, cfg, allow_download=False)
        except BenchError as e:
            raise BenchError(f"{e}; fetch it with `python -m bench prepare --suite cityscapes --data-root ... "
                             f"--seg-config {opts.seg_config} --seg-checkpoint {opts.seg_checkpoint} --allow-download`") from None
        if cfg is not None:  # loaded as a run loads it: safe loader, classes against the config
            from seg_eval.segmenter import Segmenter

            Segmenter(cfg, path, device="cpu", trust_checkpoint=opts.trust_checkpoint)
        return _file(path) + ", loads under the safe loader with the 19 Cityscapes classes"

    def labels_tool() -> str:
        import cityscapesscripts

        return f"cityscapesscripts {getattr(cityscapesscripts, '__version__', 'installed')}"

    checks = [("environment", _environment), ("data", data), ("label table", labels_tool),
              ("segmenter config", config), ("segmenter checkpoint", checkpoint)]
    if needs & {"features"}:
        checks.append(("ImageNet VGG19", lambda: _file(resolve_torchvision_weights("vgg19", opts.vgg_weights))))
    if "lpips" in needs:
        checks.append(("ImageNet AlexNet (LPIPS)", lambda: _file(resolve_torchvision_weights("alexnet",
                                                                                              opts.lpips_weights))))
    return checks


class CheckFailed(BenchError):
    """A probe found the piece but it does not work as it must (shown as FAILED, not MISSING)."""


SMOKE_BASELINE = Path(__file__).resolve().parents[1] / "results" / "baselines" / "smoke.json"


def exact_arithmetic(baseline: Path = SMOKE_BASELINE) -> str:
    """12 exact training steps (``bench.exact_selftest``) against the fingerprints committed in the smoke baseline."""
    import json

    from bench import exact_selftest

    try:
        committed = json.loads(Path(baseline).read_text())[exact_selftest.SECTION]["fingerprints"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"not checked: no committed self-test fingerprints in {baseline}"
    problems = exact_selftest.compare(exact_selftest.run_once(), committed)
    if problems:
        raise CheckFailed("; ".join(problems) + ": exact arithmetic is not exact on this machine, so `bench check` "
                          "against the smoke baseline will not hold here (`python -m bench.benchmarks.op_hashes` "
                          "names the first operation that differs between two environments)")
    return (f"{exact_selftest.STEPS} training steps of {' and '.join(committed)} reproduce the committed weights bit "
            "for bit")


def diagnose(suite: str, opts, grid) -> tuple[list[str], bool]:
    needs = _needs(grid, suite)
    checks = synthcity_checks(opts, needs) if suite == "synthcity" else cityscapes_checks(opts, needs)
    checks.append(("exact arithmetic", exact_arithmetic))
    name = getattr(grid, "name", grid)
    lines = [f"d2sm-bench doctor: suite {suite}, grid {name} (objectives need: {', '.join(sorted(needs)) or 'nothing'})"]
    ok = True
    for what, probe in checks:
        try:
            lines.append(f"  ok       {what}: {probe()}")
        except CheckFailed as e:
            ok = False
            lines.append(f"  FAILED   {what}: {e}")
        except (BenchError, ImportError) as e:
            ok = False
            lines.append(f"  MISSING  {what}: {e}")
    lines.append("all found" if ok else "some pieces are missing or failed: see the lines above")
    return lines, ok
