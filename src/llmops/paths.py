"""Where things live: the repository and the tool cache outside it."""

from __future__ import annotations

import os
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
