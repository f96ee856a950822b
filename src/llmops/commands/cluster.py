"""`llmops cluster up|down|status`: the local Kubernetes cluster."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from llmops import cluster
from llmops.cluster import node


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "cluster",
        help="start, stop or describe the local Kubernetes cluster (real control plane, kwok nodes)",
        description=(
            "A real kube-apiserver/etcd/controller-manager/scheduler with simulated kwok nodes "
            "(CPU pool + GPU pools), or kind when Docker is present. Files live under "
            f"{cluster.clusters_root()}/<name>/; ports {cluster.PORT_MIN}-{cluster.PORT_MAX} on 127.0.0.1."
        ),
    )
    csub = parser.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default=cluster.DEFAULT_NAME, help="cluster name (default: %(default)s)")

    p_up = csub.add_parser("up", help="start the cluster (reused if already up), add node pools, install the pinned CRDs")
    common(p_up)
    p_up.add_argument("--provider", choices=["auto", *cluster.PROVIDERS], default="local",
                      help="local: kwok + our binaries; kind: needs Docker; auto: kind if `docker info` works")
    p_up.add_argument("--port-base", type=int, default=cluster.PORT_MIN,
                      help=f"first of the 10 ports this cluster uses (default {cluster.PORT_MIN})")
    p_up.add_argument("--crds", choices=cluster.CRD_SELECTIONS, default="all",
                      help="operator CRDs to install: all pinned (default), only kinds the charts render, or none")
    p_up.add_argument("--real-nodes", type=int, choices=[0, 1], default=None,
                      help="local provider: add a real containerd/kubelet node (1, default; env "
                           f"{cluster.REAL_NODES_ENV}) or only kwok nodes (0)")
    p_up.add_argument("--node-gpus", type=int, default=None, metavar="N",
                      help=f"fake {cluster.GPU_RESOURCE} the real node advertises (default {node.FAKE_GPUS}; "
                           f"1-{node.MAX_FAKE_GPUS}); a running cluster keeps its node as it was started")
    p_up.add_argument("--node-gpu-product", default=None, metavar="PRODUCT",
                      help=f"give the real node GPU feature discovery's labels ({cluster.GPU_PRODUCT_LABEL}=PRODUCT, "
                           "nvidia.com/gpu.count, nvidia.com/gpu.present) so pods that select a GPU product run there "
                           f"(e.g. {cluster.H100_PRODUCT}; default: no product labels)")
    p_up.set_defaults(func=_up)

    p_down = csub.add_parser("down", help="stop the cluster and remove all its files")
    common(p_down)
    p_down.set_defaults(func=_down)

    p_status = csub.add_parser("status", help="API server version, nodes with pools and GPUs, component processes")
    common(p_status)
    p_status.add_argument("--output", choices=["table", "json"], default="table")
    p_status.set_defaults(func=_status)


def _up(args: argparse.Namespace) -> int:
    info = cluster.up(args.name, args.provider, port_base=args.port_base, install_crds=args.crds,
                      progress=lambda m: print(m, flush=True), real_nodes=args.real_nodes,
                      node_gpus=args.node_gpus, node_gpu_product=args.node_gpu_product)
    _print(info)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in info.timings.items())
    print(f"\nready in {info.timings.get('total_s', 0):.1f}s ({timings})")
    print(f"export KUBECONFIG={info.kubeconfig}")
    return 0


def _down(args: argparse.Namespace) -> int:
    pids = cluster.pids(args.name)
    killed = cluster.down(args.name)
    if killed:
        print(f"force-killed after a graceful stop timed out: {', '.join(killed)}")
    left = cluster.leftovers(args.name, pids)
    if left:
        print("left behind: " + "; ".join(left))
        return 1
    print(f"cluster {args.name} is down; nothing left behind")
    return 0


def _status(args: argparse.Namespace) -> int:
    info = cluster.status(args.name)
    if args.output == "json":
        data = asdict(info)
        data["kubeconfig"] = str(info.kubeconfig)
        print(json.dumps(data, indent=2))
    else:
        _print(info)
    return 0 if info.server_version else 1


def _print(info: cluster.ClusterInfo) -> None:
    if not info.server_version:
        print(f"cluster {info.name}: not running (start it with `llmops cluster up --name {info.name}`)")
        return
    print(f"cluster {info.name} ({info.provider}): Kubernetes {info.server_version}; kubeconfig {info.kubeconfig}")
    procs = ", ".join(f"{c} {'up' if ok else 'DOWN'}" for c, ok in info.processes.items())
    if procs:
        print(f"processes: {procs}")
    headers = ("node", "pool", "ready", "cpu", "gpus", "taints")
    rows = [(n["name"], n["pool"], "yes" if n["ready"] else "no", n["cpu"], n["gpus"], ",".join(n["taints"]) or "-")
            for n in info.nodes]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
