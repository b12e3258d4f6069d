"""The renderer's view of the train classes, defined in ``bench.base.classes`` (``render.py`` imports them from here,
and its source is part of the data's digest, so its import line stays as it was)."""
from bench.base.classes import CLASSES, ID, IGNORE_INDEX, NUM_CLASSES, PALETTE

__all__ = ["CLASSES", "ID", "IGNORE_INDEX", "NUM_CLASSES", "PALETTE"]
