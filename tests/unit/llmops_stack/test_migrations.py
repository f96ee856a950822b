"""charts/llmops-stack/migrations.yaml: a renamed or removed key fails rendering with old path, new path and version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import paths
from llmops.validate import render

UMBRELLA = paths.CHARTS_DIR / "llmops-stack"
TABLE = yaml.safe_load((UMBRELLA / "migrations.yaml").read_text())["migrations"] or []


def _set(path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def test_every_entry_of_the_real_table_fails_rendering_with_its_paths_and_version(helm: str) -> None:
    for entry in TABLE:
        with pytest.raises(render.RenderError) as err:
            render.render(UMBRELLA, [paths.VALUES_DIR / "local.yaml"], helm=helm, set_values=_set(entry["old"], 1))
        msg = str(err.value)
        assert entry["old"] in msg and str(entry["version"]) in msg and (entry["new"] or "removed") in msg, msg


def test_every_migration_version_has_upgrade_notes() -> None:
    notes = (paths.REPO_ROOT / "docs" / "upgrading.md").read_text()
    for m in TABLE:
        assert f"## {m['version']}" in notes and m["old"] in notes, f"docs/upgrading.md: no note for {m['old']}"


def _chart_with(tmp_path: Path, entries: list[dict[str, str]]) -> Path:
    """A copy of the umbrella whose table holds ENTRIES and whose global schema still accepts the old keys."""
    copy = tmp_path / "charts"
    shutil.copytree(paths.CHARTS_DIR, copy, ignore=shutil.ignore_patterns("*.tgz", "Chart.lock", ".deps-digest"))
    umbrella = copy / "llmops-stack"
    (umbrella / "migrations.yaml").write_text(yaml.safe_dump({"migrations": entries}))
    schema = json.loads((umbrella / "values.schema.json").read_text())
    for e in entries:
        parent, key = e["old"].split(".")
        schema["properties"][parent]["properties"][key] = {"description": f"removed in {e['version']}"}
    (umbrella / "values.schema.json").write_text(json.dumps(schema))
    return umbrella


def test_a_renamed_and_a_removed_key_fail_once_with_every_path_new_path_and_version(tmp_path: Path, helm: str) -> None:
    chart = _chart_with(tmp_path, [
        {"old": "global.airgapped", "new": "global.airGapped", "version": "0.2.0"},
        {"old": "global.legacyMode", "new": "", "version": "0.3.0", "note": "the simulator replaced it"},
    ])
    values = tmp_path / "old.yaml"
    values.write_text(yaml.safe_dump({"global": {"airgapped": True, "legacyMode": "on"}}))
    with pytest.raises(render.RenderError) as err:
        render.render(chart, [paths.VALUES_DIR / "local.yaml", values], helm=helm)
    msg = str(err.value)
    assert "global.airgapped: renamed to global.airGapped in 0.2.0" in msg
    assert "global.legacyMode: removed in 0.3.0; the simulator replaced it" in msg


def test_values_without_the_old_keys_render_with_a_table(tmp_path: Path, helm: str) -> None:
    chart = _chart_with(tmp_path, [{"old": "global.airgapped", "new": "global.airGapped", "version": "0.2.0"}])
    assert render.render(chart, [paths.VALUES_DIR / "local.yaml"], helm=helm)
