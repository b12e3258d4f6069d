"""User-facing errors: one line that says what is wrong and how to fix it."""
from __future__ import annotations


class BenchError(Exception):
    """An error the CLI prints as one line (no traceback) before exiting with status 2."""
