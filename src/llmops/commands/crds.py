"""`llmops crds list|files|validate`: the pinned operator CRDs and custom-resource validation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from llmops.validate import crds
from llmops.errors import LlmopsError


def register(sub: Any) -> None:
    parser = sub.add_parser("crds", help="pinned operator CRDs (KEDA, prometheus-operator, cert-manager, GPU Operator, Gateway API)")
    csub = parser.add_subparsers(dest="crds_command", metavar="ACTION", required=True)

    p_list = csub.add_parser("list", help="print each pin (module@version) and the groups/kinds its CRDs define")
    p_list.add_argument("--output", choices=["text", "json"], default="text")
    p_list.set_defaults(func=_list)

    p_files = csub.add_parser("files", help="print the path of every pinned CRD file (downloads the Go modules if needed)")
    p_files.set_defaults(func=_files)

    p_val = csub.add_parser(
        "validate",
        help="validate custom resources in YAML files against the pinned CRDs; exit 1 on findings",
        description="Objects of other API groups are skipped (use `llmops validate` for whole releases).",
    )
    p_val.add_argument("files", nargs="+", type=Path, help="YAML files (multi-document; `-` for stdin)")
    p_val.set_defaults(func=_validate)


def _list(args: argparse.Namespace) -> int:
    pins = crds.load_pins()
    kinds = crds.kinds_by_group()
    if args.output == "json":
        print(json.dumps({"pins": [vars(p) | {"globs": list(p.globs)} for p in pins], "kinds": kinds}, indent=2))
        return 0
    for pin in pins:
        print(f"{pin.name}: {pin.module}@{pin.version}")
    for group, names in sorted(kinds.items()):
        print(f"  {group}: {', '.join(names)}")
    return 0


def _files(args: argparse.Namespace) -> int:
    for path in crds.crd_files():
        print(path)
    return 0


def _validate(args: argparse.Namespace) -> int:
    objs: list[dict[str, Any]] = []
    for path in args.files:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text()
            objs += [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
        except (OSError, yaml.YAMLError) as exc:
            raise LlmopsError(f"cannot read {path}: {exc}") from exc
    findings = crds.validate_custom_resources(objs)
    for finding in findings:
        print(finding)
    checked = sum(1 for o in objs if str(o.get("apiVersion", "")).rpartition("/")[0] in crds.target_groups())
    print(f"{checked} custom resource(s) checked, {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0
