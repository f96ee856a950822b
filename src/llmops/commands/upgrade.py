"""`llmops upgrade [--diff] [--force]`: preview an upgrade with Helm + kubectl diff, refuse the dangerous ones."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from llmops import cluster
from llmops.cluster import release
from llmops.publish import preview


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "upgrade",
        help="upgrade a release (or --diff: only show what would change); refuses selector changes, dropped "
             "model caches and dropped models with traffic unless --force",
        description=preview.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cluster", default=cluster.DEFAULT_NAME, help="cluster name (default: %(default)s)")
    parser.add_argument("--release", default=release.DEFAULT_RELEASE, help="Helm release (default: %(default)s)")
    parser.add_argument("--namespace", "-n", default=release.DEFAULT_NAMESPACE)
    parser.add_argument("--chart", default=str(release.DEFAULT_CHART), help="chart folder or oci:// reference")
    parser.add_argument("--version", help="chart version (oci:// charts)")
    parser.add_argument("--verify", metavar="KEYRING", help="verify the chart's provenance with this public keyring")
    parser.add_argument("-f", "--values", action="append", default=[], help="values file (repeatable, in order)")
    parser.add_argument("--helm", choices=["helm3", "helm4"], default="helm3")
    parser.add_argument("--diff", action="store_true", help="only show the changes; install nothing")
    parser.add_argument("--force", action="store_true", help="upgrade even when a refusal applies")
    parser.add_argument("--prometheus", default=os.environ.get("LLMOPS_PROMETHEUS_URL"),
                        help="Prometheus URL that scrapes the engines, to tell whether a dropped model has traffic")
    parser.add_argument("--traffic-window", default=preview.DEFAULT_WINDOW, help="(default: %(default)s)")
    parser.set_defaults(func=run)


def chart_args(args: argparse.Namespace) -> list[str]:
    from llmops.publish.oci import plain_http

    out = ["--version", args.version] if args.version else []
    if args.verify:
        out += ["--verify", "--keyring", args.verify]
    return out + (plain_http(args.chart) if args.chart.startswith("oci://") else [])


def run(args: argparse.Namespace) -> int:
    rel = release.Release(args.release, args.namespace, args.helm, args.cluster)
    traffic = (preview.prometheus_traffic(args.prometheus, args.namespace, args.release, args.traffic_window)
               if args.prometheus else None)
    extra = chart_args(args)
    p = preview.preview(rel, args.chart, args.values, chart_args=extra, traffic=traffic)
    print(p.diff or "(no change to existing objects)")
    for kind, name in p.added:
        print(f"+ {kind}/{name} (new)")
    for kind, name in p.removed:
        print(f"- {kind}/{name} (leaves the release)")
    for reason in p.refusals:
        print(f"refused: {reason}", file=sys.stderr)
    if p.refusals and not args.force:
        print("upgrade refused; re-run with --force to accept", file=sys.stderr)
        return 1
    if args.diff:
        return 0
    rel.upgrade(args.chart, args.values, chart_args=extra)
    print(f"upgraded {rel.name}: {rel.history()[-1].get('chart')}")
    return 0
