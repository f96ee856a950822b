#!/usr/bin/env python3
"""Figures for the concern subcharts: CRD schema loading, CR validation, renders, promtool.

Usage: PYTHONPATH=src .venv/bin/python scripts/bench_concerns.py
Prints one line per figure; each figure is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from llmops import environments, paths, tools
from llmops.validate import crds, render

ENVS = ["local", "staging", "production-h100", "production-70b", "air-gapped"]


def _time(argv: list[str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.monotonic()
        subprocess.run(argv, check=True, capture_output=True)
        runs.append(time.monotonic() - start)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    load = "from llmops import crds; crds.schema_for('keda.sh/v1alpha1', 'ScaledObject')"

    cache = crds._cache_file(crds.load_pins())
    cache.unlink(missing_ok=True)
    cold = _time([py, "-c", load], 1)  # parses every pinned CRD YAML, writes the JSON cache
    warm = _time([py, "-c", load], args.repeat)
    print(f"crd schema index, cold (parse {len(crds.crd_files())} CRD files): {cold:.2f} s")
    print(f"crd schema index, warm (JSON cache, new process incl. imports): {warm:.2f} s")

    objs = []
    for env in ENVS:
        start = time.monotonic()
        manifests = render.render("llmops-stack", environments.test_layers([paths.VALUES_DIR / f"{env}.yaml"]), helm="helm3")
        print(f"render llmops-stack {env} (helm3, all enabled concerns): {time.monotonic() - start:.2f} s, {len(manifests)} objects")
        objs += [m.obj for m in manifests]
    crs = [o for o in objs if o["apiVersion"].rpartition("/")[0] in crds.target_groups()]
    start = time.monotonic()
    findings = crds.validate_custom_resources(objs)
    print(f"validate {len(crs)} custom resources of {len(ENVS)} environments: {time.monotonic() - start:.3f} s, {len(findings)} findings")

    promtool = str(tools.require("promtool"))
    (rule,) = render.find(render.render("observability", helm="helm3"), "PrometheusRule")
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        n_rules = sum(len(g["rules"]) for g in rule["spec"]["groups"])
        print(f"promtool check rules ({n_rules} rules): {_time([promtool, 'check', 'rules', str(rules)], args.repeat):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
