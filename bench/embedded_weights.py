"""Weights the embedded suite trains for itself (evaluator, feature network): found, checked, recorded.

A weights file is named by a digest of everything that determines it (data version, network
definition, training spec), so a change to any of them asks for new weights instead of reusing
stale ones. Weights trained on this machine (in the cache) come first; weights committed in the
repository (``shipped_dir``) serve a fresh clone. Either way the manifest's sha256 must match.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bench.base.atomic import atomic_write_json, sha256_file
from bench.base.errors import BenchError


def digest_of(key: object) -> str:
    """A short stable digest of a JSON-able key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class EmbeddedWeights:
    stem: str  # file name without suffix, e.g. "synthcity_unet-v4-07fbd728-128x256-t480-v96-s0-<digest>"
    cache_dir: Path
    shipped_dir: Path
    what: str  # for messages: "embedded segmenter"
    prepare_command: str  # what retrains them: "python -m bench prepare --force"

    @property
    def checkpoint(self) -> Path:
        """Where weights trained here go."""
        return self.cache_dir / f"{self.stem}.pth"

    @property
    def manifest(self) -> Path:
        return self.cache_dir / f"{self.stem}.json"

    def locate(self) -> tuple[Path, dict] | None:
        """(checkpoint, manifest dict) of usable weights: cache first, else shipped; None if neither."""
        for folder in (self.cache_dir, self.shipped_dir):
            ckpt, manifest = folder / f"{self.stem}.pth", folder / f"{self.stem}.json"
            if not (ckpt.is_file() and manifest.is_file()):
                continue
            try:
                meta = json.loads(manifest.read_text())
                if not isinstance(meta, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as e:
                raise BenchError(f"{self.what} manifest {manifest} is unreadable ({e}); run `{self.prepare_command}` "
                                 "to retrain the weights, or restore the file (git checkout for shipped ones)") from None
            if meta.get("sha256") != sha256_file(ckpt):
                raise BenchError(f"{self.what} {ckpt} does not match its recorded checksum (corrupt?); "
                                 f"run `{self.prepare_command}` to retrain it")
            return ckpt, meta
        return None

    def record(self, meta: dict) -> dict:
        """Write the manifest of freshly trained weights (their checksum first); returns it."""
        meta = {"checkpoint": self.checkpoint.name, "sha256": sha256_file(self.checkpoint), **meta}
        atomic_write_json(self.manifest, meta)
        return meta
