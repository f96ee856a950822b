#!/usr/bin/env python3
"""Benchmark: `llmops validate --all` + `llmops policy --all` against the naive way.

Ours: one validate run (values schema, Helm 3 + Helm 4 renders in parallel,
Kubernetes 1.33-1.35 and CRD schemas, cross-object checks) plus one policy
run (renders, then ONE checkov process over every environment).
Naive: one `checkov --framework helm` per environment, as the checkov docs
suggest, run one after the other; it renders with helm itself and runs only
checkov's checks (no schema, no Helm 4, no cross-object checks, no custom checks).

Prints wall seconds of each, the ratio, and how many resources each naive run
reported (checkov's helm framework drops a chart silently when helm writes to
stderr, so 0 there means nothing was checked).

    PYTHONPATH=src .venv/bin/python scripts/bench_validate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from llmops import tools, validate  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    return time.monotonic() - started, proc


def ours(env: dict[str, str], report_dir: Path) -> tuple[float, float, int, int]:
    py = [sys.executable, "-m", "llmops"]
    v_s, v = timed([*py, "validate", "--all"], env)
    p_s, p = timed([*py, "policy", "--all", "--report-dir", str(report_dir)], env)
    for name, proc in (("validate", v), ("policy", p)):
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
            print(f"  {name} exited {proc.returncode}; this run is left out of the median:\n    " + "\n    ".join(tail))
    return v_s, p_s, v.returncode, p.returncode


def naive(env: dict[str, str], envs: list[str], out: Path) -> tuple[float, dict[str, int]]:
    checkov = str(tools.require("checkov"))
    counts: dict[str, int] = {}
    started = time.monotonic()
    for name in envs:
        target = out / name
        argv = [checkov, "--directory", "charts/llmops-stack", "--framework", "helm", "--skip-download",
                "--var-file", f"values/{name}.yaml", "--output", "json", "--output-file-path", str(target), "--compact"]
        subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
        report = target / "results_json.json"
        data = json.loads(report.read_text()) if report.exists() else {}
        if isinstance(data, list):
            data = data[0] if data else {}
        counts[name] = int((data.get("summary") or {}).get("resource_count") or 0)
    return time.monotonic() - started, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="repeat each side N times and report the median")
    args = parser.parse_args()
    env = tools.tool_env({"PYTHONPATH": str(REPO / "src")})
    envs = validate.environments()
    load = os.getloadavg()[0]
    print(f"environments: {len(envs)} ({', '.join(envs)}); cores: {os.cpu_count()}; load average at start: {load:.1f}")
    ours_runs, naive_runs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        for i in range(args.repeat):
            v_s, p_s, v_rc, p_rc = ours(env, Path(tmp) / f"ours{i}")
            if v_rc == 0 and p_rc == 0:
                ours_runs.append(v_s + p_s)
            print(f"ours  run {i + 1}: validate --all {v_s:.1f}s (exit {v_rc}) + policy --all {p_s:.1f}s (exit {p_rc}) "
                  f"= {v_s + p_s:.1f}s")
            n_s, counts = naive(env, envs, Path(tmp) / f"naive{i}")
            naive_runs.append(n_s)
            print(f"naive run {i + 1}: {len(envs)} x checkov --framework helm = {n_s:.1f}s; resources per env: "
                  + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if not ours_runs:
        print("no run of ours passed; fix the charts or values first")
        return 1
    o, n = statistics.median(ours_runs), statistics.median(naive_runs)
    print(f"median: ours {o:.1f}s (target <= 30 s), naive {n:.1f}s, naive/ours = {n / o:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
