#!/usr/bin/env python3
"""Benchmark: cold bootstrap on an empty cache, then a warm re-run.

Usage: python3 scripts/bench_bootstrap.py [--cache DIR] [--keep] [--tools NAME ...]

A cold run gets its own empty LLMOPS_CACHE (Go module and build caches live
inside it, so Go starts from nothing) and pip's download cache is disabled;
the warm run repeats the same command on the now-filled cache. Prints both
wall times and the ratio. Not a test: figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, help="cache dir for the cold run (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the cold cache afterwards")
    parser.add_argument("--tools", nargs="*", default=[], help="only these tools (default: all non-optional)")
    args = parser.parse_args()

    cache = args.cache or Path(tempfile.mkdtemp(prefix="llmops-bench-cache-"))
    env = dict(os.environ, LLMOPS_CACHE=str(cache), PIP_NO_CACHE_DIR="1")
    cmd = ["scripts/bootstrap", *args.tools]
    logs = Path(tempfile.mkdtemp(prefix="llmops-bench-logs-"))
    try:
        cold = timed(cmd, env, logs / "cold.log")
        warm = timed(cmd, env, logs / "warm.log")
    finally:
        # bootstrap links ./.venv to the cache it used; point it back at the default cache.
        subprocess.run(["scripts/bootstrap"], cwd=REPO, env={k: v for k, v in os.environ.items() if k != "LLMOPS_CACHE"},
                       stdout=subprocess.DEVNULL, check=False)
        if not args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"cold bootstrap (empty cache, no pip cache): {cold:8.1f} s")
    print(f"warm re-run (same cache):                   {warm:8.1f} s")
    print(f"warm/cold ratio:                            {warm / cold:8.4f}")
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
