"""`llmops docs [--check]`: chart READMEs from values.yaml comments (helm-docs)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmops import chartdocs


def register(sub: Any) -> None:
    parser = sub.add_parser("docs", help="regenerate charts/*/README.md with helm-docs (or --check for drift)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a README is stale")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.check:
        chartdocs.generate()
        return 0
    stale = chartdocs.drifted()
    for path in stale:
        print(f"{path}: out of date; run `make docs`", file=sys.stderr)
    return 1 if stale else 0
