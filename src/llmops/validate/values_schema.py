"""Validate values files against the umbrella's and every subchart's values.schema.json.

Helm checks the schema too, but stops at a terse list without line numbers.
Here every error is reported at once as

    file:line: values.path: what is wrong (what is allowed)

The values are coalesced the way Helm does it before validating: chart
defaults, then each values file in order (a ``null`` deletes a default), then
each enabled subchart's defaults under its alias with ``global`` copied in.
Helm itself computes values only for values it accepts (it checks the schemas
and the charts' validateValues before printing anything), so the invalid
files this module exists for need this coalescing and its line map; a unit
test holds it to Helm's own computed values (``render.computed_values``) for
every environment. Everywhere else the harness asks Helm.
The umbrella schema sees the whole tree; each subchart schema sees its own
section. Disabled subcharts (``condition`` false) are skipped, as Helm skips
them.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError

from llmops import paths
from llmops.errors import LlmopsError
from llmops.validate.yamlpos import PathKey, PositionedYaml, YamlSyntaxError, format_path, load

UMBRELLA = "llmops-stack"


@dataclass(frozen=True, order=True)
class ValuesError:
    """One problem in the values, located in the file that set the offending value."""

    file: str
    line: int
    path: str
    problem: str
    allowed: str = ""
    source: str = "schema"  # schema | yaml | <chart name>

    def __str__(self) -> str:
        allowed = f" ({self.allowed})" if self.allowed else ""
        return f"{self.file}:{self.line}: {self.path}: {self.problem}{allowed}"


@dataclass
class ChartNode:
    """A chart, its defaults and schema, and its (aliased) dependencies."""

    name: str
    directory: Path
    defaults: PositionedYaml
    schema: dict[str, Any] | None
    # (key in the parent's values, condition path or "", child)
    dependencies: list[tuple[str, str, ChartNode]] = field(default_factory=list)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(paths.REPO_ROOT))
    except ValueError:
        return str(path)


def _stamp(directory: Path) -> tuple[tuple[str, int, int], ...]:
    files = [directory / n for n in ("Chart.yaml", "values.yaml", "values.schema.json")]
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists())


_CHARTS: dict[Path, tuple[Any, ChartNode]] = {}


def load_chart(directory: str | Path) -> ChartNode:
    """Read CHART's Chart.yaml, values.yaml and values.schema.json, and those of its file:// dependencies.

    Memoised per process while none of those files changes (the bad-values
    corpus validates dozens of files against the same charts).
    """
    directory = Path(directory)
    if not directory.is_absolute() and not directory.exists():
        directory = paths.CHARTS_DIR / directory
    directory = directory.resolve()
    cached = _CHARTS.get(directory)
    if cached is not None and cached[0] == _tree_stamp(cached[1]):
        return copy.deepcopy(cached[1])
    node = _load_chart(directory)
    _CHARTS[directory] = (_tree_stamp(node), node)
    return copy.deepcopy(node)


def _tree_stamp(node: ChartNode) -> tuple[Any, ...]:
    return (_stamp(node.directory), tuple(_tree_stamp(child) for _k, _c, child in node.dependencies))


def _load_chart(directory: Path) -> ChartNode:
    meta_file = directory / "Chart.yaml"
    if not meta_file.exists():
        raise LlmopsError(f"{directory} is not a chart (no Chart.yaml)")
    meta = yaml.safe_load(meta_file.read_text()) or {}
    values_file = directory / "values.yaml"
    defaults = load(values_file, display=_rel(values_file)) if values_file.exists() else PositionedYaml(
        _rel(values_file), {}
    )
    schema_file = directory / "values.schema.json"
    schema = json.loads(schema_file.read_text()) if schema_file.exists() else None
    node = ChartNode(str(meta.get("name", directory.name)), directory, defaults, schema)
    for dep in meta.get("dependencies") or []:
        repo = str(dep.get("repository", ""))
        if not repo.startswith("file://"):
            continue
        child_dir = (directory / repo.removeprefix("file://")).resolve()
        if (yaml.safe_load((child_dir / "Chart.yaml").read_text()) or {}).get("type") == "library":
            continue
        child = _load_chart(child_dir)
        node.dependencies.append((str(dep.get("alias") or dep["name"]), str(dep.get("condition") or ""), child))
    return node


# --------------------------------------------------------------------------- coalescing


def _merge(dst: dict[str, Any], src: dict[str, Any], keep_null: bool = False) -> None:
    """Overlay SRC on DST the way Helm overlays values files: maps merge, the rest replaces, null deletes.

    With KEEP_NULL a null stays as a marker, so that it can still delete a
    subchart default that is merged in later; ``_strip_nulls`` removes the markers.
    """
    for key, value in src.items():
        if value is None and not keep_null:
            dst.pop(key, None)
        elif isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, keep_null)
        else:
            dst[key] = copy.deepcopy(value)


def _strip_nulls(tree: Any) -> None:
    if isinstance(tree, dict):
        for key in [k for k, v in tree.items() if v is None]:
            del tree[key]
        for value in tree.values():
            _strip_nulls(value)


def _under(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """BASE with OVERRIDE on top (OVERRIDE wins), as a new dict."""
    out = copy.deepcopy(base)
    _merge(out, override)
    return out


def _condition_enabled(values: dict[str, Any], condition: str) -> bool:
    for cond in filter(None, (c.strip() for c in condition.split(","))):
        cur: Any = values
        for part in cond.split("."):
            if not isinstance(cur, dict) or part not in cur:
                cur = None
                break
            cur = cur[part]
        if isinstance(cur, bool):
            return cur  # Helm uses the first condition path that resolves to a bool
    return True


@dataclass
class _Layer:
    doc: PositionedYaml
    prefix: PathKey  # where the document's root sits in the umbrella tree


@dataclass
class _Section:
    chart: ChartNode
    prefix: PathKey  # where this chart's values sit in the umbrella tree
    values: dict[str, Any]
    # Defaults that feed this section, lowest precedence first (own, then each parent's).
    defaults: list[_Layer]


def coalesce(chart: ChartNode, layers: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], list[_Section]]:
    """Umbrella values after defaults + LAYERS, and the section every enabled chart validates."""
    values = copy.deepcopy(chart.defaults.data) if isinstance(chart.defaults.data, dict) else {}
    for layer in layers:
        if isinstance(layer, dict):
            _merge(values, layer, keep_null=True)
    sections: list[_Section] = []

    def descend(node: ChartNode, vals: dict[str, Any], prefix: PathKey, parents: list[_Layer]) -> None:
        own_layers = [_Layer(node.defaults, prefix), *parents]
        sections.append(_Section(node, prefix, vals, own_layers))
        glob = vals.get("global") if isinstance(vals.get("global"), dict) else {}
        for key, condition, child in node.dependencies:
            if not _condition_enabled(vals, condition):
                continue
            own = vals.get(key) if isinstance(vals.get(key), dict) else {}
            child_defaults = child.defaults.data if isinstance(child.defaults.data, dict) else {}
            merged = _under(child_defaults, own)
            merged["global"] = _under(child_defaults.get("global") or {}, glob)
            vals[key] = merged
            descend(child, merged, prefix + (key,), own_layers)

    descend(chart, values, (), [])
    _strip_nulls(values)
    return values, sections


# --------------------------------------------------------------------------- messages


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _range(schema: dict[str, Any]) -> str:
    parts = []
    if "minimum" in schema:
        parts.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        parts.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        parts.append(f"<= {schema['maximum']}")
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        parts.append(f"< {schema['exclusiveMaximum']}")
    if "multipleOf" in schema:
        parts.append(f"a multiple of {schema['multipleOf']}")
    return " and ".join(parts)


def _allowed_keys(schema: dict[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def _describe(error: ValidationError) -> list[tuple[PathKey, str, str]]:
    """(path, problem, allowed) for one jsonschema error; some errors expand to several."""
    path: PathKey = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    inst = error.instance
    v = error.validator
    if v == "additionalProperties" and isinstance(inst, dict):
        known = set(schema.get("properties", {}))
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        extras = [k for k in inst if k not in known and not any(p.search(k) for p in patterns)]
        allowed = _allowed_keys(schema)
        out = []
        for key in extras:
            guess = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{guess[0]}'?" if guess else ""
            allowed_text = f"allowed keys: {', '.join(allowed)}" if allowed else "no keys allowed here"
            if schema.get("patternProperties"):
                allowed_text += f"; or keys matching {', '.join(schema['patternProperties'])}"
            out.append((path + (key,), f"unknown key '{key}'{hint}", allowed_text))
        return out or [(path, error.message, "")]
    if v == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        req = schema.get("required", [])
        return [(path + (m,), "missing required key", f"required keys here: {', '.join(req)}") for m in missing] or [
            (path, error.message, "")
        ]
    if v == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return [(path, f"wrong type: got {_type_name(inst)} {_short(inst)}", f"allowed: {' or '.join(types)}")]
    if v == "enum":
        return [(path, f"got {_short(inst)}", f"allowed: {', '.join(_short(x) for x in error.validator_value)}")]
    if v == "const":
        return [(path, f"got {_short(inst)}", f"allowed: only {_short(error.validator_value)}")]
    if v in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}:
        return [(path, f"out of range: got {_short(inst)}", f"allowed: {_range(schema)}")]
    if v in {"minLength", "maxLength"}:
        bounds = []
        if "minLength" in schema:
            bounds.append(f"at least {schema['minLength']}")
        if "maxLength" in schema:
            bounds.append(f"at most {schema['maxLength']}")
        return [(path, f"bad length {len(inst)}: {_short(inst)}", f"allowed: {' and '.join(bounds)} characters")]
    if v == "pattern":
        hint = schema.get("description", "")
        allowed = f"must match /{error.validator_value}/" + (f": {hint}" if hint else "")
        return [(path, f"bad format: {_short(inst)}", allowed)]
    if v == "format":
        return [(path, f"bad format: {_short(inst)}", f"allowed: a valid {error.validator_value}")]
    if v in {"minItems", "maxItems"}:
        bounds = []
        if "minItems" in schema:
            bounds.append(f"at least {schema['minItems']}")
        if "maxItems" in schema:
            bounds.append(f"at most {schema['maxItems']}")
        return [(path, f"{len(inst)} item(s)", f"allowed: {' and '.join(bounds)} items")]
    if v in {"minProperties", "maxProperties"}:
        return [(path, f"{len(inst)} key(s)", f"allowed: {v} {error.validator_value}")]
    if v == "uniqueItems":
        seen: list[Any] = []
        dups = []
        for item in inst:
            if item in seen and item not in dups:
                dups.append(item)
            seen.append(item)
        return [(path, f"duplicate items {_short(dups)}", "allowed: each item once")]
    if v == "dependentRequired":
        return [(path, error.message, "set the keys it depends on, or remove it")]
    if v == "not":
        return [(path, f"value {_short(inst)} is forbidden here", "see the schema's description")]
    if v == "propertyNames":
        return [(path, error.message, f"key names must match {_short(error.validator_value)}")]
    if v in {"oneOf", "anyOf"}:
        alternatives = []
        for sub in error.validator_value:
            if isinstance(sub, dict):
                if "type" in sub:
                    alternatives.append(str(sub["type"]))
                elif "enum" in sub:
                    alternatives.append("one of " + ", ".join(_short(x) for x in sub["enum"]))
                elif "required" in sub:
                    alternatives.append("with " + ", ".join(sub["required"]))
                elif "$ref" in sub:
                    alternatives.append(str(sub["$ref"]).rsplit("/", 1)[-1])
                elif "const" in sub:
                    alternatives.append(_short(sub["const"]))
        deep = _innermost(error)
        if deep is not None:
            return _describe(deep)
        what = "matches none" if v == "anyOf" else "must match exactly one"
        return [(path, f"{_short(inst)} {what} of the allowed forms", "allowed: " + " | ".join(alternatives))]
    if v is False or error.validator_value is False:
        return [(path, "not allowed here", "remove it")]
    return [(path, error.message, "")]


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors at the bottom of ERROR's anyOf/oneOf context tree."""
    if not error.context:
        return [error]
    return [leaf for sub in error.context for leaf in _leaves(sub)]


def _innermost(error: ValidationError) -> ValidationError | None:
    """The error an anyOf/oneOf failure is really about: the deepest one in a branch of the right type.

    A branch whose `type` does not even match the value ("null" for an
    object) says nothing useful; among the rest, the error deepest in the
    value names the innermost failing path
    (autoscaling.models.tiny.triggers.queue.threshold, not
    autoscaling.models.tiny). None when no branch fits the value's type.
    """
    here = len(error.absolute_path)
    candidates = [
        leaf for leaf in _leaves(error)
        if not (leaf.validator == "type" and len(leaf.absolute_path) == here)
    ]
    if not candidates:
        return None
    deepest = max(len(c.absolute_path) for c in candidates)
    return jsonschema.exceptions.best_match(c for c in candidates if len(c.absolute_path) == deepest)


# --------------------------------------------------------------------------- validation


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)  # type: ignore[no-any-return]


def _locate(path: PathKey, layers: Sequence[_Layer]) -> tuple[str, int]:
    """The file and line that set PATH: the latest layer holding the longest prefix of it."""
    best: tuple[int, str, int] | None = None
    for layer in layers:
        n = len(layer.prefix)
        if path[:n] != layer.prefix:
            continue
        rel = path[n:]
        for cut in range(len(rel), -1, -1):
            line = layer.doc.lines.get(rel[:cut])
            if line is not None:
                depth = n + cut
                if best is None or depth >= best[0]:
                    best = (depth, layer.doc.file, line)
                break
    return (best[1], best[2]) if best else ("<values>", 1)


def validate_documents(chart: ChartNode, documents: Sequence[PositionedYaml]) -> list[ValuesError]:
    """Every schema error of DOCUMENTS (in layering order) over CHART's defaults."""
    errors: list[ValuesError] = []
    for doc in documents:
        for dup_path, first, second in doc.duplicates:
            errors.append(
                ValuesError(doc.file, second, format_path(dup_path), f"duplicate key (first set on line {first})",
                            "each key once; the later one would silently win", "yaml")
            )
        if not isinstance(doc.data, dict):
            errors.append(ValuesError(doc.file, 1, "(root)", f"values must be a map, got {_type_name(doc.data)}",
                                      "allowed: a YAML mapping", "yaml"))
    if errors and any(e.source == "yaml" and e.path == "(root)" for e in errors):
        return sorted(set(errors))
    _values, sections = coalesce(chart, [d.data for d in documents])
    seen: set[tuple[str, str]] = set()
    for section in sections:
        if section.chart.schema is None:
            continue
        layers = section.defaults + [_Layer(d, ()) for d in documents]
        for error in _validator(section.chart.schema).iter_errors(section.values):
            for rel_path, problem, allowed in _describe(error):
                if rel_path and rel_path[0] == "global" and section.prefix:
                    full = rel_path  # globals come from the umbrella's global block
                else:
                    full = section.prefix + rel_path
                dotted = format_path(full)
                if (dotted, problem) in seen:
                    continue
                seen.add((dotted, problem))
                file, line = _locate(full, layers)
                errors.append(ValuesError(file, line, dotted, problem, allowed, section.chart.name))
    return sorted(errors, key=lambda e: (e.file, e.line, e.path))


def load_documents(files: Iterable[str | Path]) -> tuple[list[PositionedYaml], list[ValuesError]]:
    docs: list[PositionedYaml] = []
    errors: list[ValuesError] = []
    for f in files:
        p = Path(f)
        if not p.exists():
            raise LlmopsError(f"values file {f} does not exist")
        try:
            docs.append(load(p, display=_rel(p)))
        except YamlSyntaxError as exc:
            errors.append(ValuesError(exc.file, exc.line, "(file)", exc.message, "fix the YAML syntax", "yaml"))
    return docs, errors


def validate_files(files: Sequence[str | Path], chart: str | Path = UMBRELLA) -> list[ValuesError]:
    """Schema errors of the values FILES (in layering order) for CHART; [] when valid."""
    node = load_chart(chart)
    docs, errors = load_documents(files)
    if errors:
        return errors
    return validate_documents(node, docs)


def parse_path(dotted: str) -> PathKey:
    """'vllm.models[0].name' -> ('vllm', 'models', 0, 'name')."""
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def locate(dotted: str, files: Sequence[str | Path], chart: str | Path = UMBRELLA) -> tuple[str, int]:
    """The file and line that set the values path DOTTED (the deepest, latest match), for chart-rule messages."""
    node = load_chart(chart)
    docs, errors = load_documents(files)
    layers: list[_Layer] = []

    def add_defaults(n: ChartNode, prefix: PathKey) -> None:
        layers.insert(0, _Layer(n.defaults, prefix))
        for key, _cond, child in n.dependencies:
            add_defaults(child, prefix + (key,))

    add_defaults(node, ())
    layers += [_Layer(d, ()) for d in docs]
    return _locate(parse_path(dotted), layers)
