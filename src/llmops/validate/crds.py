"""Operator CRDs read from the operators' own Go modules, and a validator for custom resources.

The charts render custom resources for KEDA, prometheus-operator,
cert-manager, the NVIDIA GPU Operator and Gateway API. Their CRDs are pinned
in pyproject.toml under ``[tool.llmops.crds.<name>]`` (``module``,
``version``, ``globs``) and read at test time from the Go module cache
(``go mod download``); no copy is committed, so a version bump is one edit.

Validation converts each CRD's ``openAPIV3Schema`` into JSON Schema the way
the API server reads a structural schema:

- an object schema without ``x-kubernetes-preserve-unknown-fields`` and
  without ``additionalProperties`` accepts no other fields (the API server
  prunes them silently, or rejects them under strict field validation: either
  way a typo in values would be lost, so we report it);
- ``x-kubernetes-int-or-string`` accepts an integer or a string;
- ``metadata`` is checked for a name and string labels/annotations only.

``x-kubernetes-validations`` (CEL rules) are not evaluated here: they use
Kubernetes' own CEL libraries, so the real API server judges them.
``llmops.cluster.server_dry_run`` sends objects to the cluster tier's API
server (the same pinned CRDs installed) with ``--dry-run=server`` and strict
field validation; tests/cluster/test_server_validation.py runs every
environment through it and shows a CEL-only violation refused.

Parsed schemas are cached as JSON under ``<cache>/crds/`` keyed by the pins,
so each process pays one small JSON load instead of parsing megabytes of YAML.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from llmops import paths, tools
from llmops.errors import ToolError

_CACHE_FORMAT = 2


@dataclass(frozen=True)
class CrdPin:
    """One ``[tool.llmops.crds.<name>]`` table."""

    name: str
    module: str
    version: str
    globs: tuple[str, ...]


@dataclass(frozen=True)
class Finding:
    """One problem with one rendered object (same fields as ``llmops.validate.kubeschema``)."""

    kind: str
    name: str
    version: str  # the object's apiVersion
    path: str  # dotted path inside the object, e.g. spec.triggers[0].type
    message: str

    def __str__(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"{self.kind}/{self.name} ({self.version}):{where} {self.message}"


def load_pins(pyproject: Path = paths.PYPROJECT) -> list[CrdPin]:
    with pyproject.open("rb") as fh:
        data = tomllib.load(fh)
    tables: dict[str, dict[str, Any]] = data.get("tool", {}).get("llmops", {}).get("crds", {})
    if not tables:
        raise ToolError(f"{pyproject}: no [tool.llmops.crds.<name>] tables; the CRD pins belong there")
    return [
        CrdPin(name=n, module=t["module"], version=t["version"], globs=tuple(t["globs"]))
        for n, t in tables.items()
    ]


@lru_cache(maxsize=None)
def _module_dir(module: str, version: str) -> Path:
    # The module cache is read-only once extracted; skip `go mod download`
    # (a subprocess per module) when the folder is already there.
    escaped = "".join(f"!{c.lower()}" if c.isupper() else c for c in module)
    cached = Path(tools.go_env()["GOMODCACHE"]) / f"{escaped}@{version}"
    return cached if cached.is_dir() else tools.go_module_dir(module, version)


def crd_files(pins: Iterable[CrdPin] | None = None) -> list[Path]:
    """Every pinned CRD file, downloading the Go modules that hold them if needed."""
    files: list[Path] = []
    for pin in pins if pins is not None else load_pins():
        root = _module_dir(pin.module, pin.version)
        for pattern in pin.globs:
            matched = sorted(Path(p) for p in glob.glob(str(root / pattern)))
            if not matched:
                raise ToolError(
                    f"CRD pin {pin.name}: {pin.module}@{pin.version} has no file matching {pattern!r}; "
                    "fix `globs` in pyproject.toml [tool.llmops.crds] after a version bump"
                )
            files.extend(matched)
    return files


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that reads a bare ``=`` (an enum value in some CRDs) as the string it is."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def crd_documents(pins: Iterable[CrdPin] | None = None) -> list[dict[str, Any]]:
    """The CRD objects themselves (e.g. to install into an API server)."""
    docs: list[dict[str, Any]] = []
    for f in crd_files(pins):
        for doc in yaml.load_all(f.read_text(), Loader=_Loader):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                docs.append(doc)
    return docs


# ---------------------------------------------------------------------------
# openAPIV3Schema -> JSON Schema
# ---------------------------------------------------------------------------

_METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _structural(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _structural(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if (
        schema.get("type") == "object"
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        out["additionalProperties"] = False
    # `properties` under anyOf/oneOf in a structural schema only constrain;
    # the field set is the parent's, so they must stay open.
    for key in ("anyOf", "oneOf", "allOf", "not"):
        if key in out:
            out[key] = [_open(s) for s in out[key]] if isinstance(out[key], list) else _open(out[key])
    return out


def _open(schema: Any) -> Any:
    if isinstance(schema, dict) and schema.get("additionalProperties") is False:
        schema = dict(schema)
        del schema["additionalProperties"]
    return schema


def _to_jsonschema(openapi: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = _structural(copy.deepcopy(openapi))
    props = schema.setdefault("properties", {})
    props["metadata"] = _METADATA_SCHEMA
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    return schema


def _cache_file(pins: list[CrdPin]) -> Path:
    # This module's own source is part of the key: a change to the schema
    # conversion must never be served from an old cache.
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    key = json.dumps([_CACHE_FORMAT, code, [(p.module, p.version, p.globs) for p in pins]], sort_keys=True)
    return paths.cache_root() / "crds" / f"schemas-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


@lru_cache(maxsize=1)
def _index() -> dict[str, Any]:
    """{"schemas": {"group/version/Kind": schema}, "groups": [...], "kinds": {group: [Kind...]}}."""
    pins = load_pins()
    cache = _cache_file(pins)
    if cache.exists():
        data: dict[str, Any] = json.loads(cache.read_text())
        return data
    schemas: dict[str, Any] = {}
    kinds: dict[str, list[str]] = {}
    for crd in crd_documents(pins):
        spec = crd["spec"]
        group, kind = spec["group"], spec["names"]["kind"]
        kinds.setdefault(group, []).append(kind)
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            openapi = (ver.get("schema") or {}).get("openAPIV3Schema")
            if openapi:
                schemas[f"{group}/{ver['name']}/{kind}"] = _to_jsonschema(openapi)
    data = {"schemas": schemas, "groups": sorted(kinds), "kinds": {g: sorted(k) for g, k in kinds.items()}}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{id(data)}")
    tmp.write_text(json.dumps(data))
    tmp.replace(cache)  # atomic: parallel test workers may race here
    for stale in cache.parent.glob("schemas-*.json"):
        if stale != cache:
            stale.unlink(missing_ok=True)  # 4 MB each; a pin or code change leaves the old one behind
    return data


def target_groups() -> list[str]:
    """API groups whose custom resources the charts may render (those of the pinned CRDs)."""
    return list(_index()["groups"])


def kinds_by_group() -> dict[str, list[str]]:
    """Kinds the pinned CRDs define, by API group."""
    return {g: list(k) for g, k in _index()["kinds"].items()}


def schema_for(api_version: str, kind: str) -> dict[str, Any] | None:
    """JSON Schema of KIND in API_VERSION (``group/version``), or None if no pinned CRD serves it."""
    schema: dict[str, Any] | None = _index()["schemas"].get(f"{api_version}/{kind}")
    return schema


@lru_cache(maxsize=None)
def _validator(api_version: str, kind: str) -> jsonschema.Draft4Validator | None:
    schema = schema_for(api_version, kind)
    # Draft 4: OpenAPI 3.0 uses its boolean exclusiveMinimum/Maximum.
    return jsonschema.Draft4Validator(schema) if schema is not None else None


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _message(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties" and isinstance(err.instance, dict) and isinstance(err.schema, Mapping):
        allowed = sorted((err.schema.get("properties") or {}).keys())
        extra = sorted(set(err.instance) - set(allowed))
        return f"unknown field(s) {', '.join(extra)} (allowed: {', '.join(allowed) or 'none'})"
    return err.message


def validate_custom_resources(objs: Iterable[Any]) -> list[Finding]:
    """Check every object of a pinned CRD's group against that CRD's schema.

    ``objs`` are dicts or ``llmops.validate.render.Manifest``. Objects of other groups
    (core Kubernetes, unknown operators) are skipped; an unknown kind or
    version in a group we pin is a finding, since no API server with these
    CRDs would accept it.
    """
    groups = set(target_groups())
    findings: list[Finding] = []
    for item in objs:
        obj: Mapping[str, Any] = getattr(item, "obj", item)
        api_version = str(obj.get("apiVersion", ""))
        kind = str(obj.get("kind", ""))
        name = str((obj.get("metadata") or {}).get("name", ""))
        group = api_version.rpartition("/")[0]
        if group not in groups:
            continue
        validator = _validator(api_version, kind)
        if validator is None:
            served = sorted(k.removeprefix(group + "/") for k in _index()["schemas"] if k.startswith(group + "/"))
            findings.append(
                Finding(kind, name, api_version, "", f"no pinned CRD serves {kind} in {api_version}; served: {', '.join(served)}")
            )
            continue
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            findings.append(Finding(kind, name, api_version, _path(err.absolute_path), _message(err)))
    return findings
