"""`llmops release list|check|cut|record|matrix|publish`: the suite's releases (see docs/releasing.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmops import paths
from llmops.publish import cut, record


def register(sub: Any) -> None:
    parser = sub.add_parser("release", help="release record, version rule, cut, publish (docs/releasing.md)",
                            description="Released versions live in releases.yaml; see docs/releasing.md.")
    rsub = parser.add_subparsers(dest="release_command", metavar="ACTION", required=True)

    p = rsub.add_parser("list", help="the recorded releases")
    p.set_defaults(func=_list)

    p = rsub.add_parser("check", help="exit 1 when a chart changed since the last release without a version bump")
    p.set_defaults(func=_check)

    p = rsub.add_parser("cut", help="bump changed charts to VERSION's level, move CHANGELOG's Unreleased, write metadata")
    p.add_argument("version", help="the suite (umbrella) version, SemVer")
    p.add_argument("--date", help="release date (default: today, YYYY-MM-DD)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--commit", action="store_true",
                   help="also `git commit` the cut, then record it (commit = that commit) and commit releases.yaml")
    p.add_argument("--notes", default="", help="release notes for the record (default: from CHANGELOG)")
    p.set_defaults(func=_cut)

    p = rsub.add_parser("record", help="append VERSION at COMMIT (default HEAD, the committed cut) to releases.yaml")
    p.add_argument("version")
    p.add_argument("--commit", default="HEAD", help="the commit whose tree is the release (default: %(default)s)")
    p.add_argument("--notes", default="", help="release notes (default: the CHANGELOG section's first entries)")
    p.add_argument("--date", help="release date (default: today)")
    p.set_defaults(func=_record)

    p = rsub.add_parser("matrix", help="support matrix (Kubernetes, Helm, operator pins) per release, as Markdown")
    p.set_defaults(func=_matrix)

    _register_publish(rsub)


def _list(args: argparse.Namespace) -> int:
    for r in record.load():
        print(f"{r.version}  {r.date}  {r.commit[:12]}  {r.notes}")
    return 0


def _check(args: argparse.Namespace) -> int:
    problems = record.version_problems()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        last = record.latest(record.load())
        print(f"chart versions are consistent with release {last.version if last else '(none)'}")
    return 1 if problems else 0


def _cut(args: argparse.Namespace) -> int:
    plan = cut.plan(args.version)
    since = f"since {plan.previous.version} ({plan.previous.commit[:12]})" if plan.previous else "(first release)"
    print(f"release {plan.version}: {plan.level} bump {since}")
    for name, (old, new) in sorted(plan.bumps.items()):
        print(f"  {name:18} {old} -> {new}" + ("  (changed)" if name in plan.changed else ""))
    if args.dry_run:
        return 0
    written = cut.apply(plan, date=args.date)
    if not args.commit:
        print("written: " + ", ".join(str(p.relative_to(paths.REPO_ROOT)) for p in written))
        print(f"next: commit these, then `llmops release record {plan.version}`")
        return 0
    record.git("add", "--", *[str(p) for p in written])
    record.git("commit", "-m", f"release {plan.version}: bump charts, changelog, Artifact Hub metadata")
    rec = cut.make_record(plan.version, "HEAD", notes=args.notes, date=args.date)
    path = cut.append_record(rec)
    record.git("add", "--", str(path))
    record.git("commit", "-m", f"release {plan.version}: record commit {rec.commit[:12]}")
    print(f"recorded {plan.version} = {rec.commit}")
    return 0


def _record(args: argparse.Namespace) -> int:
    rec = cut.make_record(args.version, args.commit, notes=args.notes, date=args.date)
    path = cut.append_record(rec)
    print(f"{path.name}: {rec.version} = {rec.commit} ({rec.date}); commit releases.yaml")
    return 0


def _matrix(args: argparse.Namespace) -> int:
    print(matrix_markdown(record.load()))
    return 0


def matrix_markdown(records: list[record.ReleaseRecord]) -> str:
    keys: list[str] = []
    for r in records:
        keys += [k for k in r.tested_with if k not in keys]
    head = "| release | commit | " + " | ".join(keys) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in keys) + " |"
    rows = [f"| {r.version} | {r.commit[:12]} | " + " | ".join(r.tested_with.get(k, "-") for k in keys) + " |"
            for r in sorted(records, key=lambda r: r.semver, reverse=True)]
    return "\n".join([head, rule, *rows])


def _register_publish(rsub: Any) -> None:
    p = rsub.add_parser(
        "publish",
        help="package every chart (signed), push to an OCI registry, pull back with --verify (Helm 3 and 4)",
        description="Signing key from LLMOPS_SIGNING_KEY / LLMOPS_SIGNING_KEYRING / LLMOPS_VERIFY_KEYRING "
                    "(and LLMOPS_SIGNING_PASSPHRASE_FILE); registry login from LLMOPS_REGISTRY_CONFIG. "
                    "--local-registry starts the pinned CNCF distribution registry on 127.0.0.1 for the run.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--version", help="a recorded release, packaged from its commit (git archive)")
    src.add_argument("--all-releases", action="store_true", help="every recorded release, then the working tree")
    p.add_argument("--registry", help="oci://HOST[:PORT]/PATH to push to (or --local-registry)")
    p.add_argument("--local-registry", metavar="DIR",
                   help="start a registry with its data in DIR on a free port in 16100-16109 and push there")
    p.add_argument("--unsigned", action="store_true", help="skip signing (no key needed); nothing is verified")
    p.add_argument("--helm", choices=["helm3", "helm4"], default="helm3", help="Helm that packages and pushes")
    p.set_defaults(func=_publish)


def _publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from llmops.errors import LlmopsError
    from llmops.publish import oci, registry, signing

    key = None if args.unsigned else signing.from_env()
    if not args.registry and not args.local_registry:
        raise LlmopsError("give --registry oci://HOST/PATH or --local-registry DIR")
    local = registry.LocalRegistry(Path(args.local_registry)).start() if args.local_registry else None
    try:
        url = args.registry or local.url("charts")  # type: ignore[union-attr]
        versions: list[str | None] = [args.version] if args.version else [None]
        if args.all_releases:
            versions = [r.version for r in record.load()] + [None]
        for version in versions:
            published = oci.publish(url, version=version, key=key, helm_bin=args.helm,
                                    progress=lambda m: print(m, file=sys.stderr))
            for item in published:
                print(f"{item.ref}@{item.digest}")
        if local:
            print(f"registry still serving {url} until you press Enter", file=sys.stderr)
            if sys.stdin.isatty():
                input()
    finally:
        if local:
            local.stop()
    return 0
