"""`llmops demo`: the main job on the embedded default (values/local.yaml).

Validate the values, bring up the local cluster, install the stack, start
one simulator per engine replica and run the default load profile with its
SLO gates, then print the summary and the report path. A cluster the demo
started itself is taken down at the end unless --keep is given; a cluster
that was already running is left as it was.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from llmops import cluster, loadtest, paths, validate
from llmops.cluster import release

Step = tuple[str, Callable[[argparse.Namespace], str]]

STEPS: list[Step] = [
    ("validate the values file (schema, Helm 3 + 4, Kubernetes and CRD schemas)", validate.demo_step),
    ("start the local cluster", cluster.demo_step),
    ("install the stack", release.demo_step),
    ("start the endpoints and run the default load profile", loadtest.demo_step),
]


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="local cluster, install values/local.yaml, load test, report",
        description="The README's first command. Every step prints what it did and how long it took.",
    )
    parser.add_argument("--values", default=str(paths.VALUES_DIR / "local.yaml"), help="environment values file")
    parser.add_argument("--duration", default="30s", help="load-test duration (Go-style, e.g. 30s, 2m)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster, release and endpoints running afterwards")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = getattr(args, "cluster", None) or cluster.DEFAULT_NAME
    was_running = cluster.api_ready(name)
    try:
        for index, (title, step) in enumerate(STEPS, start=1):
            prefix = f"[{index}/{len(STEPS)}] {title}"
            print(f"{prefix} ...", flush=True)
            started = time.monotonic()
            summary = step(args)
            print(f"{prefix}: done in {time.monotonic() - started:.1f}s {summary}".rstrip(), flush=True)
    finally:
        if args.keep or was_running:
            reason = "--keep" if args.keep else "it was running before the demo"
            print(f"cluster {name} left running ({reason}); `llmops cluster down` stops it", flush=True)
        elif cluster.api_ready(name):
            cluster.down(name)
            print(f"cluster {name} stopped and removed (use --keep to leave it running)", flush=True)
    return 0
