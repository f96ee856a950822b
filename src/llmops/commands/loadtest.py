"""`llmops loadtest`: Locust against an OpenAI-compatible endpoint or a release, with SLO gates and reports."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmops.loadtest import harness, shapes


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "loadtest",
        help="load-test an endpoint (--url) or a release (--release -n) with a profile; SLO gates; reports",
        description=(
            "Runs Locust headless with loadtests/locustfile.py. Exit 0 when every SLO holds, 1 on a breach "
            "(each breach is named with its margin), 2 on a usage or tool error. Reports (Locust HTML, "
            "summary.json, summary.md, PNG plots) go to --report-dir."
        ),
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:18000")
    target.add_argument("--release", help="Helm release whose engine Services to load (local: registered simulators)")
    parser.add_argument("-n", "--namespace", default="llmops", help="namespace of --release (default: llmops)")
    parser.add_argument("--model", action="append", default=[], help="model name(s) at --url (default: GET /v1/models)")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", ""), help="bearer token (default: $OPENAI_API_KEY)")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    parser.add_argument("--profile", default="default", help="profile file or name in loadtests/profiles/ (default: default)")
    parser.add_argument("--slo", default="default", help="SLO file, name in loadtests/slo/, or `none` (default: default)")
    parser.add_argument("--report-dir", type=Path, help="where reports go (default: reports/loadtest-<timestamp>)")
    shape = parser.add_argument_group("load shape (overrides the profile's `load:` block)")
    shape.add_argument("--shape", choices=shapes.SHAPES, help="concurrency | constant | poisson | step | spike | sweep")
    shape.add_argument("--duration", help="Go-style duration, e.g. 30s, 2m")
    shape.add_argument("--users", type=float, help="clients for `concurrency` (closed loop)")
    shape.add_argument("--rate", type=float, help="req/s for `constant` / `poisson` (open loop)")
    shape.add_argument("--max-concurrency", type=int, help="cap on requests in flight for open-loop shapes")
    shape.add_argument("--step-duration", help="length of each sweep step")
    shape.add_argument("--steps", type=int, help="sweep steps up to the measured max rate")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the workload (default 1)")
    incl = parser.add_argument_group("in the cluster (charts/loadtest; needs --release)")
    incl.add_argument("--in-cluster", action="store_true",
                      help="run Locust master + workers as pods next to the release (charts/loadtest), aimed at its "
                           "Service; the master's summary comes back into --report-dir")
    incl.add_argument("--workers", type=int, default=2, help="Locust worker pods (default 2)")
    incl.add_argument("--service", help="the release's Service to load, e.g. <release>-router (default: its one "
                                        "engine Service, else its router)")
    incl.add_argument("--cluster", default=os.environ.get("LLMOPS_CLUSTER", "llmops"),
                      help="local cluster whose real node runs the pods (default: $LLMOPS_CLUSTER or llmops)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.set_defaults(func=run)


@contextlib.contextmanager
def _targets(args: argparse.Namespace) -> Iterator[dict[str, list[str]]]:
    from llmops.loadtest import targets

    if args.url:
        yield targets.from_url(args.url, args.model, args.api_key, insecure=args.insecure)
    else:
        with targets.from_release(args.release, args.namespace) as resolved:
            yield resolved


def run(args: argparse.Namespace) -> int:
    overrides = {
        "shape": args.shape,
        "duration": args.duration,
        "users": args.users,
        "rate": args.rate,
        "max_concurrency": args.max_concurrency,
        "step_duration": args.step_duration,
        "steps": args.steps,
    }
    if args.in_cluster:
        return _run_in_cluster(args, overrides)
    with _targets(args) as resolved:
        outcome = harness.execute(
            targets=resolved,
            profile=args.profile,
            slo_ref=args.slo,
            load_overrides=overrides,
            report_dir=args.report_dir,
            api_key=args.api_key,
            insecure=args.insecure,
            seed=args.seed,
            plots=not args.no_plots,
            context={"target": args.url or f"release {args.release} -n {args.namespace}"},
        )
    return _report(outcome)


def _run_in_cluster(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from llmops.errors import LlmopsError
    from llmops.loadtest import incluster

    if not args.release:
        raise LlmopsError("--in-cluster runs next to a release: give --release NAME -n NAMESPACE (not --url)")
    outcome = incluster.execute(
        release_name=args.release, namespace=args.namespace, cluster_name=args.cluster, profile=args.profile,
        slo_ref=args.slo, load_overrides=overrides, workers=args.workers, seed=args.seed, report_dir=args.report_dir,
        service=args.service,
    )
    return _report(outcome)


def _report(outcome: Any) -> int:
    """Print a run's summary lines and report path; 1 when an SLO gate failed."""
    for line in outcome.lines:
        print(line)
    print(f"report: {outcome.report_dir / 'summary.md'}")
    if not outcome.ok:
        for breach in outcome.breaches():
            print(f"SLO breached: {breach}")
        return 1
    return 0
