"""values_schema: every error at once, located at file:line, saying what is allowed.

These tests use a small two-level chart written into tmp_path so they pin the
validator's behaviour independently of the real charts (whose own bad-values
corpus lives in tests/unit/invalid_values/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.validate import values_schema

UMBRELLA_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "global": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"environment": {"enum": ["local", "staging", "production"]}},
        },
        "eng": {"type": "object"},
        "extra": {"type": "object"},
    },
}
SUB_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean"},
        "global": {"type": "object"},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
        "mode": {"type": "string"},
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z]+$"},
                    "maxModelLen": {"type": "integer", "minimum": 1},
                },
            },
        },
    },
    "required": ["mode"],
}


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    umb, sub = tmp_path / "umb", tmp_path / "sub"
    umb.mkdir()
    sub.mkdir()
    (umb / "Chart.yaml").write_text(
        "apiVersion: v2\nname: umb\nversion: 0.1.0\ndependencies:\n"
        "  - name: sub\n    alias: eng\n    version: 0.1.0\n    repository: file://../sub\n    condition: eng.enabled\n"
    )
    (umb / "values.yaml").write_text("global:\n  environment: local\neng:\n  enabled: true\n")
    (umb / "values.schema.json").write_text(json.dumps(UMBRELLA_SCHEMA))
    (sub / "Chart.yaml").write_text("apiVersion: v2\nname: sub\nversion: 0.1.0\n")
    (sub / "values.yaml").write_text("enabled: true\nmode: fast\nreplicas: 1\nmodels:\n  - name: a\n")
    (sub / "values.schema.json").write_text(json.dumps(SUB_SCHEMA))
    return umb


def _write(tmp_path: Path, text: str, name: str = "v.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


def test_valid_values_give_no_errors(chart: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "eng:\n  replicas: 3\n")
    assert values_schema.validate_files([f], chart) == []


def test_all_errors_reported_at_once_with_the_line_that_set_them(chart: Path, tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        "global:\n  environment: prod\neng:\n  replicas: 20\n  replcas: 2\n  models:\n"
        "    - name: Bad\n      maxModelLenn: 3\n",
    )
    errors = {(e.line, e.path) for e in values_schema.validate_files([f], chart)}
    assert errors == {
        (2, "global.environment"),
        (4, "eng.replicas"),
        (5, "eng.replcas"),
        (7, "eng.models[0].name"),
        (8, "eng.models[0].maxModelLenn"),
    }


@pytest.mark.parametrize(
    ("text", "path", "needle"),
    [
        ("global:\n  environment: prod\n", "global.environment", "allowed: 'local', 'staging', 'production'"),
        ("eng:\n  replicas: 11\n", "eng.replicas", "allowed: >= 0 and <= 10"),
        ("eng:\n  replicas: two\n", "eng.replicas", "allowed: integer"),
        ("eng:\n  replcas: 2\n", "eng.replcas", "did you mean 'replicas'?"),
        ("eng:\n  replcas: 2\n", "eng.replcas", "allowed keys: enabled, global, mode, models, replicas"),
        ("eng:\n  models:\n    - maxModelLen: 3\n", "eng.models[0].name", "required keys here: name"),
        ("eng:\n  models:\n    - name: A1\n", "eng.models[0].name", "must match /^[a-z]+$/"),
    ],
)
def test_message_names_what_is_allowed(chart: Path, tmp_path: Path, text: str, path: str, needle: str) -> None:
    errors = values_schema.validate_files([_write(tmp_path, text)], chart)
    assert [e.path for e in errors] == [path]
    assert needle in str(errors[0])


def test_null_deletes_a_default_so_a_required_key_goes_missing(chart: Path, tmp_path: Path) -> None:
    errors = values_schema.validate_files([_write(tmp_path, "eng:\n  mode: null\n")], chart)
    assert [(e.path, e.problem) for e in errors] == [("eng.mode", "missing required key")]
    # located at the file that deleted it
    assert errors[0].file.endswith("v.yaml") and errors[0].line == 2


def test_later_file_wins_and_error_points_at_it(chart: Path, tmp_path: Path) -> None:
    base = _write(tmp_path, "eng:\n  replicas: 2\n", "base.yaml")
    over = _write(tmp_path, "# override\neng:\n  replicas: 99\n", "over.yaml")
    errors = values_schema.validate_files([base, over], chart)
    assert [(Path(e.file).name, e.line, e.path) for e in errors] == [("over.yaml", 3, "eng.replicas")]
    assert values_schema.validate_files([over, base], chart) == []


def test_disabled_subchart_is_not_validated_like_helm(chart: Path, tmp_path: Path) -> None:
    f = _write(tmp_path, "eng:\n  enabled: false\n  replicas: 99\n")
    assert values_schema.validate_files([f], chart) == []


def test_bad_default_is_reported_in_the_chart_values_file(chart: Path, tmp_path: Path) -> None:
    (chart.parent / "sub" / "values.yaml").write_text("enabled: true\nmode: fast\nreplicas: -1\n")
    errors = values_schema.validate_files([_write(tmp_path, "{}\n")], chart)
    assert [(Path(e.file).name, e.line, e.path) for e in errors] == [("values.yaml", 3, "eng.replicas")]


def test_duplicate_key_is_an_error_not_a_silent_override(chart: Path, tmp_path: Path) -> None:
    errors = values_schema.validate_files([_write(tmp_path, "eng:\n  replicas: 1\n  replicas: 2\n")], chart)
    assert [(e.line, e.path, e.source) for e in errors] == [(3, "eng.replicas", "yaml")]


def test_yaml_syntax_error_names_file_and_line(chart: Path, tmp_path: Path) -> None:
    errors = values_schema.validate_files([_write(tmp_path, "eng:\n  replicas: [1,\n  x: y\n")], chart)
    assert len(errors) == 1 and errors[0].source == "yaml" and errors[0].line >= 2


def test_globals_reach_subchart_and_errors_keep_the_global_path(chart: Path, tmp_path: Path) -> None:
    schema = dict(SUB_SCHEMA)
    schema["properties"] = dict(SUB_SCHEMA["properties"], **{
        "global": {"type": "object", "properties": {"environment": {"enum": ["local", "staging"]}}}})
    (chart.parent / "sub" / "values.schema.json").write_text(json.dumps(schema))
    errors = values_schema.validate_files([_write(tmp_path, "global:\n  environment: production\n")], chart)
    assert [(e.path, e.line, e.source) for e in errors] == [("global.environment", 2, "sub")]
