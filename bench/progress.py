"""Progress bars (tqdm) that stay quiet when output is not a terminal."""
from __future__ import annotations

import sys

from tqdm import tqdm


def bar(total: int, desc: str, position: int = 0, unit: str = "it"):
    return tqdm(total=total, desc=desc, position=position, unit=unit, leave=position == 0, dynamic_ncols=True,
                disable=not sys.stderr.isatty())
