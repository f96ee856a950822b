#!/usr/bin/env python3
"""Upgrade benchmark: publish to a verified install on the real node, the upgrade matrix, requests lost to upgrades.

Usage (from the repo root; a cluster with a real node is used when its API
answers, otherwise started and stopped):
    LLMOPS_CLUSTER=up LLMOPS_CLUSTER_PORT_BASE=16020 \\
        PYTHONPATH=src .venv/bin/python scripts/bench_upgrade.py [--version 0.2.0] [--runs 1] [--matrix | --local-only]

1. Publish to verified install, per run: a fresh signing key (temp
   GNUPGHOME), a fresh CNCF distribution registry on 127.0.0.1:16100-16109,
   then what `llmops release publish` does for release VERSION (default: the
   newest recorded; the working tree only when it obeys the version rule,
   `--version tree`): package + sign every chart from the release's commit,
   push, pull back with `--verify` on Helm 3 and Helm 4; then `helm install
   oci://... --version V --verify` of the umbrella with that release's
   values/local.yaml on the real node until every Deployment is Available
   and the router streams a chat completion. Clock: from the start of the
   packaging to that first streamed answer.
2. `--matrix`: times tests/cluster/test_upgrade_path.py (every recorded
   release x every environment of its commit x Helm 3 and 4); `--local-only`
   only its real-node cases (`-k local and not vllm`).
3. Requests during upgrades: the streaming load the matrix runs on the real
   node (tests/cluster/test_upgrade_path.py, llmops.loadtest.steadyload) writes
   reports/cluster/upgrade-load.json; this prints per case and phase the
   requests, failed requests (target 0), connection resends and the longest
   gap between streamed tokens.

Prints one line per step and a JSON summary.
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
from llmops.loadtest import steadyload
from llmops.cluster import release
from llmops.publish import oci, record, registry, signing

CLUSTER = os.environ.get("LLMOPS_CLUSTER", "up")
PORT_BASE = int(os.environ.get("LLMOPS_CLUSTER_PORT_BASE", "16020"))
FIGURES = paths.REPO_ROOT / "reports" / "cluster" / "upgrade-load.json"
READY_TIMEOUT_S = 120


def _router(namespace: str) -> tuple[str, str]:
    svc = json.loads(cluster.kubectl(CLUSTER, "get", "services", "-n", namespace, "-o", "json",
                                     "-l", "app.kubernetes.io/component=router"))["items"][0]["spec"]
    dep = json.loads(cluster.kubectl(CLUSTER, "get", "deployments", "-n", namespace, "-o", "json",
                                     "-l", "app.kubernetes.io/component=engine"))["items"][0]
    return f"http://{svc['clusterIP']}:{svc['ports'][0]['port']}", dep["spec"]["template"]["metadata"]["annotations"][
        "llmops.io/served-model-name"]


def one_run(i: int, version: str | None, tmp: Path) -> dict[str, float]:
    t: dict[str, float] = {}
    key = signing.generate(tmp / f"gnupg-{i}")
    with registry.LocalRegistry(tmp / f"registry-{i}") as reg:
        url = reg.url("charts")
        start = time.monotonic()
        published = oci.publish(url, version=version, key=key, work=tmp / f"work-{i}", progress=lambda _m: None)
        t["publish_s"] = time.monotonic() - start
        umbrella = next(p for p in published if p.chart == "llmops-stack")
        values = paths.VALUES_DIR / "local.yaml"
        if version is not None:
            values = tmp / f"local-{version}.yaml"
            values.write_text(record.git("show", f"{record.find(record.load(), version).commit}:values/local.yaml"))
        name = f"bench-up-{i}"
        rel = release.Release(name, name, "helm3", CLUSTER, real_node=True)
        mark = time.monotonic()
        try:
            rel.install(f"{url}/llmops-stack", [values], timeout="3m", chart_args=[
                "--version", umbrella.version, "--verify", "--keyring", str(key.public_keyring), *oci.plain_http(url)])
            t["install_verified_s"] = time.monotonic() - mark
            base, model = _router(name)
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not steadyload.SteadyLoad(base, model, request_timeout_s=10).once().ok:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the router of {name} did not stream a completion within {READY_TIMEOUT_S} s")
                time.sleep(0.5)
            end = time.monotonic()
            t["first_stream_after_install_s"] = end - mark - t["install_verified_s"]
            t["publish_to_streaming_install_s"] = end - start
        finally:
            if rel.status() is not None:
                rel.uninstall(wait=False)
            cluster.kubectl(CLUSTER, "delete", "namespace", name, "--wait=false")
    return t


def matrix(local_only: bool) -> dict[str, object]:
    FIGURES.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", "tests/cluster/test_upgrade_path.py", "-n", "0", "-q", "-p", "no:cacheprovider"]
    if local_only:
        argv += ["-k", "local and not vllm"]
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=paths.REPO_ROOT, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return {"wall_s": round(wall, 1), "result": tail, "exit": proc.returncode, "cases": "local only" if local_only else "all"}


def load_figures() -> dict[str, dict[str, object]]:
    if not FIGURES.exists():
        return {}
    out: dict[str, dict[str, object]] = {}
    for case, phases in json.loads(FIGURES.read_text()).items():
        for phase, f in phases.items():
            if f.get("measured"):
                out[f"{case} {phase}"] = {k: f[k] for k in ("requests", "failed_requests", "connection_retries",
                                                             "longest_token_gap_s", "longest_itl_s", "forced_rollout")
                                          if k in f}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", default=None, help="release to publish (default: the newest recorded; 'tree': the working tree)")
    parser.add_argument("--runs", type=int, default=1)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--matrix", action="store_true", help="also time the whole upgrade matrix")
    group.add_argument("--local-only", action="store_true", help="also time the matrix's real-node cases only")
    args = parser.parse_args()
    version = None if args.version == "tree" else (args.version or record.load()[-1].version)
    started_cluster = not cluster.api_ready(CLUSTER)
    if started_cluster:
        cluster.up(CLUSTER, "local", port_base=PORT_BASE)
    if not cluster.has_real_node(CLUSTER):
        raise SystemExit(f"cluster {CLUSTER} has no real node; this benchmark installs there")
    runs = []
    summary: dict[str, object] = {"version": version or "tree"}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
            for i in range(args.runs):
                t = one_run(i, version, Path(tmp))
                runs.append(t)
                print(f"run {i + 1}: " + "  ".join(f"{k} {v:.1f}" for k, v in t.items()), flush=True)
        summary["median"] = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
        if args.matrix or args.local_only:
            summary["upgrade_matrix"] = matrix(args.local_only)
            print(f"upgrade matrix: {summary['upgrade_matrix']}", flush=True)
        figures = load_figures()
        summary["load_during_upgrades"] = figures
        for case, f in figures.items():
            print(f"{case}: {f['requests']} requests, {f['failed_requests']} failed, {f['connection_retries']} resent, "
                  f"longest token gap {float(f['longest_token_gap_s']) * 1000:.0f} ms", flush=True)
        if figures:
            summary["failed_requests_total"] = sum(int(f["failed_requests"]) for f in figures.values())
            summary["longest_token_gap_s"] = max(float(f["longest_token_gap_s"]) for f in figures.values())
    finally:
        if started_cluster:
            cluster.down(CLUSTER)
    print(json.dumps({**summary, "runs": args.runs, "load": os.getloadavg()[0]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
