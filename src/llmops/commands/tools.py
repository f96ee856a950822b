"""`llmops tools install|check`: the pinned toolchain."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from llmops import paths, tools


def register(sub: Any) -> None:
    parser = sub.add_parser("tools", help="install and check the pinned external tools")
    tsub = parser.add_subparsers(dest="tools_command", metavar="ACTION", required=True)

    p_install = tsub.add_parser(
        "install",
        help="install every pinned tool (or the named ones) into the cache, then verify each",
        description=f"Installs into {paths.cache_root()} (set LLMOPS_CACHE to move it). Idempotent.",
    )
    p_install.add_argument("names", nargs="*", help="tools to install (default: --for all)")
    _add_for(p_install, "install the tools of this set")
    p_install.add_argument("--force", action="store_true", help="reinstall even when the cache has the pinned version")
    p_install.set_defaults(func=_install)

    p_check = tsub.add_parser("check", help="print tool, pinned version, found version and path; exit 2 if any is wrong")
    p_check.add_argument("names", nargs="*", help="tools to check (default: --for all)")
    _add_for(p_check, "check the tools of this set")
    p_check.add_argument("--output", choices=["table", "json"], default="table")
    p_check.set_defaults(func=_check)

    p_env = tsub.add_parser("env", help="print shell exports that put the pinned tools first on PATH")
    p_env.set_defaults(func=_env)

    p_sets = tsub.add_parser("sets", help="print each tool set, the command it serves and its tools")
    p_sets.set_defaults(func=_sets)


def _add_for(parser: argparse.ArgumentParser, what: str) -> None:
    sets = tools.load_toolsets()
    listing = "; ".join(f"{name}: {desc}" for name, desc in sets.items())
    parser.add_argument("--for", dest="toolset", metavar="SET", choices=[*sets, tools.ALL],
                        help=f"{what}: {', '.join([*sets, tools.ALL])} ({listing}; all: every tool in a set)")


def _print_table(results: list[tools.ToolStatus]) -> None:
    headers = ("tool", "pinned", "found", "path", "status")
    rows = [(r.name, r.pinned, r.found, r.path, "ok" if r.ok else r.detail) for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def _install(args: argparse.Namespace) -> int:
    results = tools.install(args.names, toolset=args.toolset, force=args.force, progress=lambda m: print(m, flush=True))
    bad = [r for r in results if not r.ok]
    for r in bad:
        print(f"error: {r.name}: {r.detail}", file=sys.stderr)
    return 2 if bad else 0


def _check(args: argparse.Namespace) -> int:
    results = tools.check(args.names, args.toolset)
    if args.output == "json":
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        _print_table(results)
    bad = [r for r in results if not r.ok]
    if bad and args.output == "table":
        print(f"\n{len(bad)} tool(s) missing or wrong; fix with `make bootstrap`", file=sys.stderr)
    return 2 if bad else 0


def _sets(args: argparse.Namespace) -> int:
    for name, desc in [*tools.load_toolsets().items(), (tools.ALL, "make test / make bootstrap: every set")]:
        print(f"{name}: {desc}\n  {' '.join(tools.tools_for(name))}")
    return 0


def _env(args: argparse.Namespace) -> int:
    env = tools.tool_env()
    print(f"export PATH={env['PATH']}")
    print(f"export CT_CONFIG_DIR={env['CT_CONFIG_DIR']}")
    return 0
