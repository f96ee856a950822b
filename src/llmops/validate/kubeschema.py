"""Validate rendered objects against the Kubernetes OpenAPI schemas, offline.

The schemas come from the pinned ``kubernetes-validate`` package (one JSON
schema per kind and API version for each Kubernetes minor). We use its
*strict* variant, which closes every object (``additionalProperties: false``),
so a misspelt field in a template is a finding, not a silently dropped key.

Validators are built once per (Kubernetes version, kind, apiVersion) and the
1.5 MB shared definitions file is parsed once per version, so validating the
few hundred objects of every environment costs well under a second each.

Custom resources (any API group that is not built into Kubernetes) are
skipped here: their schemas are the operators' CRDs, validated elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource

DEFAULT_VERSIONS: tuple[str, ...] = ("1.33.0", "1.34.0", "1.35.0")

# API groups served by kube-apiserver itself; everything else is a CRD.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)


@dataclass(frozen=True)
class Finding:
    """One way an object breaks the schema of one Kubernetes version."""

    kind: str
    name: str
    version: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f".{self.path}" if self.path else ""
        return f"{self.kind}/{self.name} (Kubernetes {self.version}){where}: {self.message}"


def api_group(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` -> ``""`` (the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def is_custom_resource(obj: Mapping[str, Any]) -> bool:
    return api_group(str(obj.get("apiVersion", ""))) not in BUILTIN_GROUPS


def _schema_dir(version: str) -> Any:
    mm = ".".join(version.lstrip("v").split(".")[:2])
    root = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    folder = root.joinpath(f"v{mm}.0-local-strict")
    if not folder.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.name.endswith("-local-strict"))
        raise ValueError(
            f"kubernetes-validate has no schemas for Kubernetes {version}; available: {', '.join(have)}. "
            "Bump the kubernetes-validate pin in pyproject.toml."
        )
    return folder


@lru_cache(maxsize=None)
def _registry(version: str) -> Registry:  # type: ignore[type-arg]
    defs = json.loads(_schema_dir(version).joinpath("_definitions.json").read_text())
    return Resource.from_contents(defs) @ Registry()


@lru_cache(maxsize=None)
def _validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1
    short = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    f = _schema_dir(version).joinpath(f"{kind.lower()}-{short}.json")
    if not f.is_file():
        return None
    schema = json.loads(f.read_text())
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


def _leaf_errors(err: jsonschema.ValidationError) -> Iterable[jsonschema.ValidationError]:
    """oneOf/anyOf errors are noisy; report the most specific cause instead."""
    if err.context:
        best = jsonschema.exceptions.best_match(err.context)
        if best is not None:
            yield from _leaf_errors(best)
            return
    yield err


def validate_object(obj: Mapping[str, Any], version: str) -> list[Finding]:
    """Findings for one object against one Kubernetes version ([] when valid or a custom resource)."""
    kind = str(obj.get("kind", ""))
    name = str((obj.get("metadata") or {}).get("name", ""))
    api_version = str(obj.get("apiVersion", ""))
    if not kind or not api_version:
        return [Finding(kind or "?", name, version, "", "object has no kind or apiVersion")]
    if is_custom_resource(obj):
        return []
    validator = _validator(version, kind, api_version)
    if validator is None:
        return [
            Finding(kind, name, version, "", f"Kubernetes {version} does not serve {kind} in {api_version}")
        ]
    findings = []
    for err in sorted(validator.iter_errors(dict(obj)), key=lambda e: list(map(str, e.absolute_path))):
        for leaf in _leaf_errors(err):
            path = ".".join(str(p) for p in leaf.absolute_path)
            findings.append(Finding(kind, name, version, path, leaf.message))
    return findings


def validate_objects(
    objs: Iterable[Mapping[str, Any]], versions: Iterable[str] = DEFAULT_VERSIONS
) -> list[Finding]:
    """Validate every object against every version; custom resources are skipped."""
    objs = list(objs)
    findings: list[Finding] = []
    for version in versions:
        for obj in objs:
            findings.extend(validate_object(obj, version))
    return findings
