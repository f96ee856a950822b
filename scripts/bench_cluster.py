#!/usr/bin/env python3
"""Cluster lifecycle benchmark: warm `cluster up`, `down` leaving nothing, optionally a cold control-plane build.

Usage (from the repo root):
    PYTHONPATH=src .venv/bin/python scripts/bench_cluster.py [--runs 3] [--cold]

--cold rebuilds kube-control-plane, etcd and kwok with an empty Go build
cache (a throw-away LLMOPS_CACHE that shares only the downloaded modules),
which is what a fresh CI machine pays once; it takes many minutes on 2 cores.
Prints one line per measurement and a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llmops import cluster, paths

# Away from the test cluster's block (16000); override with LLMOPS_CLUSTER / LLMOPS_CLUSTER_PORT_BASE.
NAME = os.environ.get("LLMOPS_CLUSTER", "bench")
PORT_BASE = int(os.environ.get("LLMOPS_CLUSTER_PORT_BASE", "16050"))


def _busy_ports(base: int) -> list[int]:
    busy = []
    for port in cluster.Ports.from_base(base).all():
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def warm_up_down(runs: int, selection: str) -> dict[str, object]:
    ups, downs, api, nodes, crds = [], [], [], [], []
    for i in range(runs):
        started = time.monotonic()
        info = cluster.up(NAME, "local", port_base=PORT_BASE, install_crds=selection)
        ups.append(time.monotonic() - started)
        api.append(info.timings.get("control_plane_s", 0) + info.timings.get("api_ready_s", 0))
        nodes.append(info.timings.get("nodes_ready_s", 0) + info.timings.get("real_node_started_s", 0))
        crds.append(info.timings.get("crds_s", 0))
        assert info.server_version, "API server did not report a version"
        pids = cluster.pids(NAME)
        started = time.monotonic()
        cluster.down(NAME)
        downs.append(time.monotonic() - started)
        left = cluster.leftovers(NAME, pids)
        busy = _busy_ports(PORT_BASE)
        if busy:
            owners = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=False).stdout
            left.append(f"ports {busy} still accept connections: "
                        + "; ".join(ln for ln in owners.splitlines() if any(f":{p} " in ln for p in busy)))
        print(f"crds={selection} run {i + 1}: up {ups[-1]:.1f}s (API {api[-1]:.1f}s, nodes {nodes[-1]:.1f}s, CRDs {crds[-1]:.1f}s; "
              f"{', '.join(f'{k} {v:.1f}s' for k, v in info.timings.items())}), "
              f"down {downs[-1]:.1f}s, left behind: {left or 'nothing'}; server {info.server_version}, "
              f"{len(info.nodes)} nodes", flush=True)
        if left:
            raise SystemExit(f"down left behind: {left}")
    return {
        "runs": runs,
        "crds": selection,
        "up_s_median": round(statistics.median(ups), 2),
        "up_s_max": round(max(ups), 2),
        "api_ready_s_median": round(statistics.median(api), 2),
        "nodes_ready_s_median": round(statistics.median(nodes), 2),
        "crds_s_median": round(statistics.median(crds), 2),
        "down_s_median": round(statistics.median(downs), 2),
        "left_behind": "nothing",
    }


def cold_build() -> dict[str, object]:
    real = paths.cache_root()
    tmp = Path(tempfile.mkdtemp(prefix="llmops-cold-"))
    try:
        (tmp / "go").mkdir()
        (tmp / "go" / "mod").symlink_to(real / "go" / "mod")  # downloads are not what we measure
        env = dict(os.environ, LLMOPS_CACHE=str(tmp))
        out: dict[str, object] = {}
        for tool in ("kube-control-plane", "etcd", "kwok"):
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "llmops", "tools", "install", tool], env=env, check=True)
            out[f"{tool}_s"] = round(time.monotonic() - started, 1)
            print(f"cold build {tool}: {out[f'{tool}_s']}s", flush=True)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a cold build of the control-plane binaries")
    parser.add_argument("--crds", nargs="+", default=["all", "charts"], choices=cluster.CRD_SELECTIONS,
                        help="CRD selections to time `up` with (default: all charts)")
    args = parser.parse_args()
    summary: dict[str, object] = {"nproc": os.cpu_count()}
    if args.cold:
        summary["cold_build"] = cold_build()
    load = os.getloadavg()[0]
    summary["loadavg_1m_before"] = round(load, 1)
    summary["warm"] = [warm_up_down(args.runs, crds) for crds in args.crds]
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
