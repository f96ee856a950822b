"""`llmops policy`: checkov with our checks over every environment's render, exceptions, reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llmops import validate
from llmops.validate import policy


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "policy",
        help="security and operations policy (checkov + policies/checks) over rendered environments",
        description=(
            "Renders each environment, scans all of them with ONE checkov run (--framework kubernetes, "
            "custom checks from policies/checks), adds whole-environment checks (NetworkPolicy coverage), "
            "applies policies/exceptions.yaml and writes summary, JSON, JUnit XML and SARIF reports. "
            "Exit 0 pass, 1 failures, 2 usage/tool error (including 0 resources scanned)."
        ),
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME", help="environment NAME (repeatable)")
    parser.add_argument("-f", "--values", action="append", default=[], metavar="FILE",
                        help="values file(s) layered in order into one target")
    parser.add_argument("--all", action="store_true", help="every environment in values/")
    parser.add_argument("--overlay", action="append", default=[], metavar="FILE",
                        help="values file layered LAST onto every target (repeatable), e.g. your real image "
                             "digests over the placeholders of the shipped production files")
    parser.add_argument("--report-dir", type=Path, default=policy.DEFAULT_REPORT_DIR,
                        help="where to write the reports (default: %(default)s)")
    parser.add_argument("--exceptions", type=Path, default=policy.EXCEPTIONS_FILE,
                        help="reviewed exceptions file (default: %(default)s)")
    parser.add_argument("--output", choices=["text", "json"], default="text", help="what to print on stdout")
    parser.add_argument("--helm", default="helm3", choices=["helm3", "helm4"], help="Helm to render with")
    parser.add_argument("--release", default="llmops")
    parser.add_argument("--namespace", default="llmops")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = validate.targets_from(args.env, args.values, args.all, overlays=args.overlay)
    report = policy.check(
        targets,
        helm=args.helm,
        release=args.release,
        namespace=args.namespace,
        exceptions_file=args.exceptions,
        progress=lambda m: print(f"[policy] {m}", file=sys.stderr, flush=True),
    )
    files = policy.write_reports(report, args.report_dir)
    if args.output == "json":
        print(json.dumps(policy.to_json(report), indent=2))
    else:
        print(policy.summary_text(report))
        print("reports: " + ", ".join(str(p) for p in files.values()))
    return 0 if report.ok else 1
