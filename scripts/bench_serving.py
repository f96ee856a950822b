#!/usr/bin/env python3
"""Serving charts: wall time of `helm template` of the umbrella per environment
(Helm 3 and Helm 4, no memoisation) and of the Kubernetes 1.33-1.35 schema
validation of what it renders. Prints one row per (environment, helm).

    PYTHONPATH=src .venv/bin/python scripts/bench_serving.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from llmops import environments, paths, tools
from llmops.validate import kubeschema, render


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    args = parser.parse_args()
    chart = render.chart_path("llmops-stack")
    render.ensure_dependencies(chart)
    envs = sorted(paths.VALUES_DIR.glob("*.yaml"))
    print(f"{'environment':<18} {'helm':<6} {'objects':>7} {'template ms':>12} {'schema ms (3 versions)':>23}")
    totals = []
    for env in envs:
        for helm in render.HELM_VERSIONS:
            layers = [arg for f in environments.test_layers([env]) for arg in ("-f", str(f))]
            argv = [str(tools.require(helm)), "template", "llmops", str(chart), "-n", "llmops", *layers]
            t_template, t_schema = [], []
            objs: list[dict] = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                out = subprocess.run(argv, capture_output=True, text=True, check=True, env=tools.tool_env()).stdout
                t_template.append((time.perf_counter() - t0) * 1000)
                objs = [m.obj for m in render.parse_manifests(out)]
                t0 = time.perf_counter()
                findings = kubeschema.validate_objects(objs)
                t_schema.append((time.perf_counter() - t0) * 1000)
                assert not findings, findings
            tm, sm = statistics.median(t_template), statistics.median(t_schema)
            totals.append(tm + sm)
            print(f"{env.stem:<18} {helm:<6} {len(objs):>7} {tm:>12.0f} {sm:>23.0f}")
    print(f"all environments x both helms, sequential: {sum(totals) / 1000:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
