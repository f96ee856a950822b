#!/usr/bin/env python3
"""Release benchmark: `make release` start to a verified install from the registry, and the upgrade matrix.

Usage (from the repo root):
    LLMOPS_CLUSTER=llmops-e LLMOPS_CLUSTER_PORT_BASE=16050 \\
        PYTHONPATH=src .venv/bin/python scripts/bench_release.py [--runs 3] [--matrix]

Per run: a fresh key (temp GNUPGHOME) and a fresh CNCF distribution registry
on 127.0.0.1:16100-16109; publish the working tree (package + sign every
chart, push, pull back with --verify on Helm 3 and Helm 4), then `helm
install oci://... --verify` of the umbrella with values/local.yaml on the
local cluster until every Deployment is Available; then uninstall. --matrix
also times tests/cluster/test_upgrade_path.py (every recorded release x every
environment of its commit x Helm 3 and 4). Prints one line per step and a
JSON summary.
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

from llmops import cluster, paths
from llmops.cluster import release
from llmops.publish import oci, registry, signing

CLUSTER = os.environ.get("LLMOPS_CLUSTER", "llmops-e")
PORT_BASE = int(os.environ.get("LLMOPS_CLUSTER_PORT_BASE", "16050"))


def one_run(i: int, tmp: Path) -> dict[str, float]:
    t: dict[str, float] = {}
    start = time.monotonic()
    key = signing.generate(tmp / f"gnupg-{i}")
    t["keygen_s"] = time.monotonic() - start
    mark = time.monotonic()
    with registry.LocalRegistry(tmp / f"registry-{i}") as reg:
        t["registry_start_s"] = time.monotonic() - mark
        mark = time.monotonic()
        published = oci.publish(reg.url("charts"), version=None, key=key, work=tmp / f"work-{i}",
                                progress=lambda _m: None)
        t["publish_s"] = time.monotonic() - mark
        umbrella = next(p for p in published if p.chart == "llmops-stack")
        name = f"bench-rel-{i}"
        rel = release.Release(name, name, "helm3", CLUSTER)
        mark = time.monotonic()
        url = reg.url("charts")
        try:
            rel.install(f"{url}/llmops-stack", [paths.VALUES_DIR / "local.yaml"], timeout="3m", chart_args=[
                "--version", umbrella.version, "--verify", "--keyring", str(key.public_keyring), *oci.plain_http(url)])
            t["install_verified_s"] = time.monotonic() - mark
        finally:
            if rel.status() is not None:
                rel.uninstall(wait=False)
            cluster.kubectl(CLUSTER, "delete", "namespace", name, "--wait=false")
    t["release_to_install_s"] = t["registry_start_s"] + t["publish_s"] + t["install_verified_s"]
    return t


def matrix() -> dict[str, object]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/cluster/test_upgrade_path.py", "-n", "0", "-q",
                           "-p", "no:cacheprovider"], cwd=paths.REPO_ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return {"wall_s": round(wall, 1), "result": tail, "exit": proc.returncode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--matrix", action="store_true", help="also time the upgrade matrix (cluster tier test)")
    args = parser.parse_args()
    started_cluster = not cluster.api_ready(CLUSTER)
    if started_cluster:
        cluster.up(CLUSTER, "local", port_base=PORT_BASE)
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
            for i in range(args.runs):
                t = one_run(i, Path(tmp))
                runs.append(t)
                print(f"run {i + 1}: " + "  ".join(f"{k} {v:.1f}" for k, v in t.items()), flush=True)
        summary: dict[str, object] = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
        if args.matrix:
            summary["upgrade_matrix"] = matrix()
            print(f"upgrade matrix: {summary['upgrade_matrix']}", flush=True)
    finally:
        if started_cluster:
            cluster.down(CLUSTER)
    print(json.dumps({"median": summary, "runs": args.runs, "load": os.getloadavg()[0]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
