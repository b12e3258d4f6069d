"""User-facing errors: one line that says what is wrong and how to fix it."""
from __future__ import annotations


class BenchError(Exception):
    """An error the CLI prints as one line (no traceback) before exiting with status 2."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def unpickler_reason(e: BaseException) -> str:
    """What torch's weights-only unpickler refused, e.g. "Unsupported global: GLOBAL fractions.Fraction was not an
    allowed global ..." (its message is a paragraph; the reason is one sentence of it), else the first line."""
    import re

    m = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", str(e), re.S)
    return " ".join(m.group(1).split()).split(". ")[0][:200] if m else first_line(e)  # its first sentence


class Interrupted(BenchError):
    """SIGINT or SIGTERM stopped training after the current iteration, with a checkpoint written."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
