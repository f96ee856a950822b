"""Where things live: the repository and the tool cache outside it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"
VALUES_DIR = REPO_ROOT / "values"
POLICIES_DIR = REPO_ROOT / "policies"
PYPROJECT = REPO_ROOT / "pyproject.toml"


def cache_root() -> Path:
    """The tool cache: $LLMOPS_CACHE, else $XDG_CACHE_HOME/llmops, else ~/.cache/llmops.

    It lives outside the repository so that a fresh clone (as in CI) reuses
    what an earlier run on the same machine already built.
    """
    explicit = os.environ.get("LLMOPS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llmops"


def bin_dir() -> Path:
    """Directory with one entry per pinned tool; put it first on PATH."""
    return cache_root() / "bin"


def tool_path(name: str) -> Path:
    return bin_dir() / name


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Hold ``<cache>/locks/NAME.lock`` exclusively: one process at a time across xdist workers and CLI runs.

    An flock, released when the block ends or the process dies (no stale lock
    to clean up after a kill). The standard library has no cross-process lock
    and the harness takes no dependency for six lines.
    """
    locks = cache_root() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f"{name}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
