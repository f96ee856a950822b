"""`llmops validate`: values schema, render with Helm 3 and 4, Kubernetes/CRD schemas, cross-object checks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmops import validate
from llmops.validate import kubeschema, render


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "validate",
        help="check environment values and the manifests they render",
        description=(
            "1) values against the umbrella's and subcharts' values.schema.json (all errors, file:line); "
            "2) render with Helm 3 and Helm 4 in parallel; 3) every object against the Kubernetes "
            "OpenAPI schemas and custom resources against the pinned operator CRDs; 4) cross-object "
            "checks (selectors, ports, scale targets, duplicates). Exit 0 valid, 1 invalid, 2 usage/tool error."
        ),
    )
    parser.add_argument("--env", action="append", default=[], metavar="NAME",
                        help="environment NAME = values/NAME.yaml (repeatable; one target each)")
    parser.add_argument("-f", "--values", action="append", default=[], metavar="FILE",
                        help="values file(s) layered in order into ONE target (repeatable)")
    parser.add_argument("--all", action="store_true", help="every environment in values/")
    parser.add_argument("--overlay", action="append", default=[], metavar="FILE",
                        help="values file layered LAST onto every target (repeatable), e.g. your real image "
                             "digests over the placeholders of the shipped production files")
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.add_argument("--helm", default=",".join(render.HELM_VERSIONS),
                        help="comma-separated Helm installs to render with (default: %(default)s)")
    parser.add_argument("--kube-versions", default=",".join(kubeschema.DEFAULT_VERSIONS),
                        help="Kubernetes versions to validate against (default: %(default)s)")
    parser.add_argument("--release", default="llmops")
    parser.add_argument("--namespace", default="llmops")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = validate.targets_from(args.env, args.values, args.all, overlays=args.overlay)
    helms = [h for h in args.helm.split(",") if h]
    unknown = [h for h in helms if h not in render.HELM_VERSIONS]
    if unknown:
        print(f"llmops validate: unknown helm {', '.join(unknown)}; choose from {', '.join(render.HELM_VERSIONS)}",
              file=sys.stderr)
        return 2
    results = validate.validate(
        targets,
        helms=helms,
        kube_versions=[v for v in args.kube_versions.split(",") if v],
        release=args.release,
        namespace=args.namespace,
        progress=lambda m: print(f"[validate] {m}", file=sys.stderr, flush=True),
    )
    print(validate.format_json(results) if args.output == "json" else validate.format_text(results))
    return 0 if all(r.ok for r in results) else 1
