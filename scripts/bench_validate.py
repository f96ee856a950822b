#!/usr/bin/env python3
"""Benchmark: `llmops validate --all` + `llmops policy --all` against the naive way.

Ours: one validate run (values schema, Helm 3 + Helm 4 renders in parallel,
Kubernetes 1.33-1.35 and CRD schemas, cross-object checks) plus one policy
run (renders, then ONE checkov process over every environment).
Naive: one `checkov --framework helm` per environment, as the checkov docs
suggest, run one after the other; it renders with helm itself and runs only
checkov's checks (no schema, no Helm 4, no cross-object checks, no custom checks).

Prints wall and CPU seconds (user+sys of the processes; independent of other
load on the machine) of each, the ratios, and how many resources each naive run
reported (checkov's helm framework drops a chart silently when helm writes to
stderr, so 0 there means nothing was checked).

    PYTHONPATH=src .venv/bin/python scripts/bench_validate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from llmops import environments, tools, validate  # noqa: E402


CPU: dict[str, float] = {}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str], env: dict[str, str], label: str = "") -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall seconds of ARGV; its CPU seconds (user+sys, children included) go to CPU[label]."""
    cpu0 = _children_cpu()
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    wall = time.monotonic() - started
    CPU[label] = CPU.get(label, 0.0) + _children_cpu() - cpu0
    return wall, proc


def ours(env: dict[str, str], report_dir: Path) -> tuple[float, float, int, int]:
    py = [sys.executable, "-m", "llmops"]
    CPU.pop("validate", None)
    CPU.pop("policy", None)
    # the shipped production files carry placeholder digests: layer the test-only ones
    overlay = ["--overlay", str(environments.TEST_IMAGE_DIGESTS)]
    v_s, v = timed([*py, "validate", "--all", *overlay], env, "validate")
    p_s, p = timed([*py, "policy", "--all", *overlay, "--report-dir", str(report_dir)], env, "policy")
    for name, proc in (("validate", v), ("policy", p)):
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
            print(f"  {name} exited {proc.returncode}; this run is left out of the median:\n    " + "\n    ".join(tail))
    return v_s, p_s, v.returncode, p.returncode


def naive(env: dict[str, str], envs: list[str], out: Path) -> tuple[float, dict[str, int]]:
    checkov = str(tools.require("checkov"))
    counts: dict[str, int] = {}
    started = time.monotonic()
    CPU.pop("naive", None)
    for name in envs:
        target = out / name
        argv = [checkov, "--directory", "charts/llmops-stack", "--framework", "helm", "--skip-download",
                "--var-file", f"values/{name}.yaml", "--output", "json", "--output-file-path", str(target), "--compact"]
        timed(argv, env, "naive")
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
    ours_runs, naive_runs, ours_cpu, naive_cpu = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        for i in range(args.repeat):
            v_s, p_s, v_rc, p_rc = ours(env, Path(tmp) / f"ours{i}")
            cpu = CPU["validate"] + CPU["policy"]
            if v_rc == 0 and p_rc == 0:
                ours_runs.append(v_s + p_s)
                ours_cpu.append(cpu)
            print(f"ours  run {i + 1}: validate --all {v_s:.1f}s (exit {v_rc}) + policy --all {p_s:.1f}s (exit {p_rc}) "
                  f"= {v_s + p_s:.1f}s wall, {cpu:.1f} CPU s (validate {CPU['validate']:.1f}, policy {CPU['policy']:.1f})")
            n_s, counts = naive(env, envs, Path(tmp) / f"naive{i}")
            naive_runs.append(n_s)
            naive_cpu.append(CPU["naive"])
            print(f"naive run {i + 1}: {len(envs)} x checkov --framework helm = {n_s:.1f}s wall, "
                  f"{CPU['naive']:.1f} CPU s; resources per env: "
                  + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if not ours_runs:
        print("no run of ours passed; fix the charts or values first")
        return 1
    o, n = statistics.median(ours_runs), statistics.median(naive_runs)
    oc, nc = statistics.median(ours_cpu), statistics.median(naive_cpu)
    print(f"median wall: ours {o:.1f}s (target <= 30 s), naive {n:.1f}s, naive/ours = {n / o:.2f}x")
    # CPU seconds do not depend on what else the machine runs; on 2 idle cores wall >= CPU/2.
    print(f"median CPU:  ours {oc:.1f}s, naive {nc:.1f}s, naive/ours = {nc / oc:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
