"""`llmops endpoints up|status`: host simulators standing in for a release's engine pods (local provider)."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from typing import Any

from llmops import paths
from llmops.cluster import endpoints


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "endpoints",
        help="run llm-d-inference-sim on loopback for a release's engine Deployments (kwok pods run nothing)",
    )
    esub = parser.add_subparsers(dest="endpoints_command", metavar="ACTION", required=True)
    up = esub.add_parser(
        "up",
        help="start one simulator per engine replica (args as the chart renders them); stay in the foreground",
        description=(
            "Renders the umbrella chart with --values, starts one simulator per replica of each engine "
            "Deployment on 127.0.0.1:18000-18099 and registers them for `llmops loadtest --release`. "
            "With --follow it keeps one simulator per Ready pod as read from the API server (autoscaling). "
            "Ctrl-C (or SIGTERM) stops them all."
        ),
    )
    up.add_argument("--values", default=str(paths.VALUES_DIR / "local.yaml"), help="environment values file")
    up.add_argument("--release", default="llmops", help="release name (default: llmops)")
    up.add_argument("-n", "--namespace", default="llmops", help="namespace (default: llmops)")
    up.add_argument("--follow", action="store_true", help="track each Deployment's Ready replicas in the cluster")
    up.add_argument("--interval", type=float, default=2.0, help="seconds between --follow polls")
    up.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until signalled)")
    up.set_defaults(func=_up)
    status = esub.add_parser("status", help="list the live registered simulators")
    status.set_defaults(func=_status)
    down = esub.add_parser("down", help="stop registered simulators (e.g. those `make demo --keep` left running)")
    down.add_argument("--release", help="only this release's (default: every registered simulator)")
    down.add_argument("-n", "--namespace", help="only this namespace's")
    down.set_defaults(func=_down)


def _up(args: argparse.Namespace) -> int:
    from llmops.loadtest.demo import engine_deployments

    deployments = engine_deployments(args.values, args.release, args.namespace)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with endpoints.EndpointManager() as manager:
        def reconcile(replicas: dict[str, int]) -> None:
            for dep in deployments:
                labels = {"release": args.release, "namespace": args.namespace, "model_name": dep.model, "deployment": dep.name}
                manager.reconcile(dep.group, dep.config, replicas.get(dep.name, dep.replicas), labels=labels)

        reconcile({})
        for sim in manager.simulators():
            print(f"{sim.group}[{sim.index}] {'/'.join(sim.config.served)} -> {sim.url} (pid {sim.pid})", flush=True)
        print(f"registry: {manager.registry}; Ctrl-C stops them", flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        last: dict[str, int] = {}
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if args.follow:
                ready = endpoints.ready_replicas(args.namespace, [d.name for d in deployments])
                if ready != last:
                    reconcile(ready)
                    print(f"ready replicas {ready}: {len(manager.simulators())} simulator(s)", flush=True)
                    last = ready
            stop.wait(args.interval)
    return 0


def _status(args: argparse.Namespace) -> int:
    entries = endpoints.read_registry()
    if not entries:
        print(f"no live simulators registered in {endpoints.registry_path()}")
        return 0
    for e in sorted(entries, key=lambda e: (e.get("group", ""), e.get("index", 0))):
        print(f"{e.get('namespace', '-')}/{e.get('release', '-')} {e.get('group')}[{e.get('index')}] "
              f"{'/'.join(e.get('served_model_names', []))} {e['url']} pid {e['pid']}")  # fmt: skip
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = endpoints.stop_registered(args.release, args.namespace)
    print(f"stopped {len(stopped)} simulator(s){': ' + ' '.join(stopped) if stopped else ''}")
    return 0
