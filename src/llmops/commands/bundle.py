"""`llmops bundle --values FILE... -o OUT` and `llmops bundle verify OUT`: the air-gap bundle."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from llmops.publish import bundle, signing


def register(sub: Any) -> None:
    parser = sub.add_parser("bundle", help="air-gap bundle: charts + signatures + image digests + model manifest; "
                                           "`bundle verify FILE` checks one offline",
                            description=bundle.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", nargs="?", choices=["verify"], help="verify FILE instead of writing a bundle")
    parser.add_argument("file", nargs="?", help="bundle to verify")
    parser.add_argument("--values", "-f", action="append", default=[], type=Path, help="values file (repeatable)")
    parser.add_argument("-o", "--output", type=Path, help="bundle to write (.tar.gz)")
    parser.add_argument("--version", help="a recorded release (packaged from its commit) instead of the tree")
    parser.add_argument("--unsigned", action="store_true", help="no signing key (verify will then refuse it)")
    parser.add_argument("--keyring", type=Path, default=os.environ.get(signing.ENV_VERIFY_KEYRING),
                        help="public keyring for verify (default: $LLMOPS_VERIFY_KEYRING)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "verify":
        if not args.file:
            print("llmops bundle verify: give the bundle file", file=sys.stderr)
            return 2
        problems = bundle.verify(Path(args.file), args.keyring)
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{args.file}: {'INVALID' if problems else 'ok'}")
        return 1 if problems else 0
    if not args.output:
        print("llmops bundle: give -o FILE", file=sys.stderr)
        return 2
    key = None if args.unsigned else signing.from_env()
    bundle.create(args.output, args.values, key=key, version=args.version, progress=lambda m: print(m, file=sys.stderr))
    return 0
