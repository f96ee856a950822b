#!/usr/bin/env python3
"""Benchmark: cold bootstrap of each tool set on an empty cache, then a warm re-run.

Usage: python3 scripts/bench_bootstrap.py [--for SET ...] [--cache DIR] [--keep]

Each set (default: demo, then all) gets its own empty LLMOPS_CACHE under
--cache, so each figure is a first run on a fresh machine: the Go module and
build caches live inside it (GOFLAGS is cleared), pip's download cache is
disabled. The warm run repeats the same command on the filled cache. Prints
the wall time of each, the harness virtualenv and every tool's install time
(from the cache's timings.json), and the machine's load average before and
after (the figure is only as good as the machine was idle). Not a test:
figures go to docs/benchmarks.md with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(toolset: str, cache: Path, logs: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in {"GOFLAGS", "GOCACHE", "GOMODCACHE", "GOPATH"}}
    env.update(LLMOPS_CACHE=str(cache), PIP_NO_CACHE_DIR="1", LLMOPS_HEARTBEAT_SECONDS="30")
    cmd = ["scripts/bootstrap", "--for", toolset]
    before = load()
    cold = timed(cmd, env, logs / f"{toolset}-cold.log")
    after = load()
    warm = timed(cmd, env, logs / f"{toolset}-warm.log")
    venv = re.search(r"harness virtualenv ready in ([0-9.]+)s", (logs / f"{toolset}-cold.log").read_text())
    try:
        tools = json.loads((cache / "timings.json").read_text())
    except OSError:
        tools = {}
    return {"set": toolset, "cold": cold, "warm": warm, "venv": float(venv.group(1)) if venv else None,
            "tools": {k: v["seconds"] for k, v in tools.items()}, "load_before": before, "load_after": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--for", dest="sets", action="append", metavar="SET",
                        help="tool set to measure (repeatable; default: demo and all)")
    parser.add_argument("--cache", type=Path, help="parent of the per-set empty caches (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the cold caches afterwards")
    args = parser.parse_args()
    sets = args.sets or ["demo", "all"]

    root = args.cache or Path(tempfile.mkdtemp(prefix="llmops-bench-cache-"))
    logs = Path(tempfile.mkdtemp(prefix="llmops-bench-logs-"))
    link = REPO / ".venv"
    previous = os.readlink(link) if link.is_symlink() else None
    results = []
    try:
        for toolset in sets:
            cache = root / toolset
            if cache.exists() and any(cache.iterdir()):
                sys.exit(f"{cache} is not empty: a cold figure needs an empty cache")
            results.append(measure(toolset, cache, logs))
            if not args.keep:
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        # bootstrap links ./.venv to the cache it used; put back what was there.
        if previous is not None:
            if link.is_symlink():
                link.unlink()
            link.symlink_to(previous)
    for r in results:
        print(f"== --for {r['set']}: cold {r['cold']:.1f} s ({r['cold'] / 60:.1f} min), warm re-run {r['warm']:.1f} s; "
              f"load average before {r['load_before']}, after {r['load_after']}")
        if r["venv"] is not None:
            print(f"   {'harness virtualenv':32s} {r['venv']:8.1f} s")
        for name, seconds in sorted(r["tools"].items(), key=lambda kv: -kv[1]):  # type: ignore[union-attr]
            print(f"   {name:32s} {seconds:8.1f} s")
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
