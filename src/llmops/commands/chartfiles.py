"""`llmops chart-files`: generate the files charts need before Helm can read them."""

from __future__ import annotations

import argparse
from typing import Any

from llmops import paths
from llmops.loadtest import chartfiles


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "chart-files",
        help="generate charts/loadtest/files/ (the locustfile and the harness modules it imports)",
        description="A build step: rendering through llmops runs it too; run it before a plain "
        "`helm template charts/loadtest` or `helm package`.",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    written = chartfiles.generate()
    where = (paths.CHARTS_DIR / chartfiles.CHART / "files").relative_to(paths.REPO_ROOT)
    print(f"{where}/: {', '.join(written)}")
    return 0
