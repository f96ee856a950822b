"""`llmops status`: the release, its pods, and why a Pending pod is not scheduled."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from llmops import cluster
from llmops.cluster import release


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="release, pods and the scheduler's reason for every Pending pod",
        description="Reads the local cluster named by --cluster (see `llmops cluster up`).",
    )
    parser.add_argument("--cluster", default=cluster.DEFAULT_NAME, help="cluster name (default: %(default)s)")
    parser.add_argument("--release", default=release.DEFAULT_RELEASE, help="Helm release (default: %(default)s)")
    parser.add_argument("--namespace", "-n", default=release.DEFAULT_NAMESPACE, help="namespace (default: %(default)s)")
    parser.add_argument("--helm", choices=["helm3", "helm4"], default="helm3", help="Helm major version to ask")
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not cluster.api_ready(args.cluster):
        print(f"cluster {args.cluster} is not running; start it with `llmops cluster up`")
        return 2
    rel = release.Release(args.release, args.namespace, args.helm, args.cluster)
    info = rel.status()
    if info is not None:
        # `helm status -o json` carries no chart name; history does.
        info["chart_ref"] = rel.history()[-1].get("chart", "?")
    pods = release.pod_states(args.namespace, cluster_name=args.cluster)
    if args.output == "json":
        summary = None if info is None else {
            "name": info.get("name"), "revision": info.get("version"),
            "status": info.get("info", {}).get("status"), "chart": _chart(info),
        }
        print(json.dumps({"release": summary, "pods": [asdict(p) for p in pods]}, indent=2))
    else:
        if info is None:
            print(f"release {args.release}: not installed in namespace {args.namespace}")
        else:
            print(f"release {info.get('name')} revision {info.get('version')}: "
                  f"{info.get('info', {}).get('status')} ({_chart(info)}) in namespace {args.namespace}")
        headers = ("pod", "phase", "ready", "node", "reason")
        rows = [(p.name, p.phase, "yes" if p.ready else "no", p.node or "-", p.reason or "-") for p in pods]
        widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
        for row in (headers, *rows):
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    pending = [p for p in pods if p.phase == "Pending"]
    return 1 if pending or info is None else 0


def _chart(info: dict[str, Any]) -> str:
    return str(info.get("chart_ref", "?"))
