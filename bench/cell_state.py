"""The state of a cell, decided by the files in its folder, and the lock that says a process works on it.

- done: ``result.json`` exists and reads as a result (written atomically, last);
- running: ``lock`` is held (``flock``) by a live process; the kernel releases it when the process
  dies, even by SIGKILL, so a stale lock can never block a cell;
- failed: ``failed.json`` holds the reason (NaN loss, exception); ``--clean-failed`` makes it pending;
- corrupt: ``result.json`` exists but does not read (reported, never used);
- pending: anything else (possibly with a training checkpoint to resume from).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from bench.base.errors import BenchError
from bench.results import RESULT_FILE, read_result

LOCK_FILE = "lock"
FAILED_FILE = "failed.json"
CHECKPOINT_FILE = "train.pth"
CHECKPOINT_NOTE = "train.pth.json"  # {"iteration": N} of the checkpoint, written with it
LOG_FILE = "log.txt"
_ITER = re.compile(r"iter (\d+)/(\d+)")


class CellLock:
    """An exclusive, non-blocking ``flock`` on ``<folder>/lock``; holder's pid/host/time written inside."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(folder: Path) -> dict | None:
    """Who holds the cell's lock ({pid, host, since}), or None when no live process does."""
    path = folder / LOCK_FILE
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(path.read_text() or "{}")
            except json.JSONDecodeError:
                return {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@dataclass
class CellState:
    state: str  # done | running | failed | corrupt | pending
    detail: str = ""  # failure reason, progress, holder
    iteration: int | None = None
    iterations: int | None = None


def training_progress(folder: Path) -> tuple[int, int] | None:
    """(iteration, total) from the last progress line of the cell's log."""
    log = folder / LOG_FILE
    if not log.is_file():
        return None
    last = None
    with open(log, errors="replace") as f:
        for line in f:
            m = _ITER.search(line)
            if m:
                last = (int(m.group(1)), int(m.group(2)))
    return last


def cell_state(folder: Path) -> CellState:
    progress = training_progress(folder)
    it, total = progress if progress else (None, None)
    if (folder / RESULT_FILE).is_file():
        try:
            read_result(folder / RESULT_FILE)
            return CellState("done", iteration=total, iterations=total)
        except BenchError as e:
            return CellState("corrupt", str(e))
    holder = lock_holder(folder)
    if holder is not None:
        who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
        return CellState("running", who, it, total)
    if (folder / FAILED_FILE).is_file():
        try:
            reason = json.loads((folder / FAILED_FILE).read_text()).get("error", "")
        except (OSError, json.JSONDecodeError):
            reason = "failed.json unreadable"
        return CellState("failed", reason, it, total)
    if (folder / CHECKPOINT_FILE).is_file():
        try:  # the iteration a resume starts from (the log may have gone further before the process died)
            it = int(json.loads((folder / CHECKPOINT_NOTE).read_text())["iteration"])
            detail = f"resumes from its checkpoint at iteration {it}"
        except (OSError, ValueError, KeyError, TypeError):
            detail = "checkpoint to resume from"
        return CellState("pending", detail, it, total)
    return CellState("pending", "", it, total)
