#!/usr/bin/env python3
"""Real node benchmark: a simulator pod from create to Ready on the local cluster's real node.

Usage (from the repo root, cluster up with its real node):
    LLMOPS_CLUSTER=llmops PYTHONPATH=src .venv/bin/python scripts/bench_real_node.py [--runs 5]

Each run creates one Pod Security `restricted` pod running the locally built
simulator image (readiness probe on /health every second) in a namespace
pinned to the real node, and times create -> Ready from the Pod's own
condition timestamps and from the wall clock. Prints one line per run and a
JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from datetime import datetime

import yaml

from llmops import cluster
from llmops.cluster import images, release

NAME = os.environ.get("LLMOPS_CLUSTER", cluster.DEFAULT_NAME)


def _pod(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "sim",
                "image": images.ref("llm-d-inference-sim"),
                "args": ["--model", "m", "--port", "8000", "--force-dummy-tokenizer"],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True},
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 1},
            }],
        },
    }  # fmt: skip


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not cluster.has_real_node(NAME):
        raise SystemExit(f"cluster {NAME} has no running real node; `llmops cluster up --name {NAME}` first")
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    release.ensure_namespace(ns, cluster_name=NAME, real_node=True)
    walls, conds = [], []
    try:
        for i in range(args.runs):
            pod = f"sim-{i}"
            started = time.time()
            cluster.kubectl(NAME, "apply", "-n", ns, "-f", "-", input_text=yaml.safe_dump(_pod(pod)))
            cluster.kubectl(NAME, "wait", "-n", ns, "--for=condition=Ready", f"pod/{pod}", "--timeout=60s", timeout=70)
            walls.append(time.time() - started)
            obj = json.loads(cluster.kubectl(NAME, "get", "pod", "-n", ns, pod, "-o", "json"))
            ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
            conds.append(_ts(ready["lastTransitionTime"]) - _ts(obj["metadata"]["creationTimestamp"]))
            print(f"run {i + 1}: create -> Ready {walls[-1]:.2f}s wall, {conds[-1]:.0f}s by the Pod's timestamps "
                  f"(node {obj['spec']['nodeName']})", flush=True)
    finally:
        cluster.kubectl(NAME, "delete", "namespace", ns, "--wait=false")
    print(json.dumps({"runs": args.runs, "wall_s_median": round(statistics.median(walls), 2),
                      "wall_s_max": round(max(walls), 2), "condition_s_median": statistics.median(conds)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
