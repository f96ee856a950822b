"""The five concern subcharts as charts: strict lint of every ci scenario and a documented value for every key."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from llmops import paths, tools
from llmops.validate import render

CHARTS = ("gpu", "autoscaling", "observability", "ingress", "network-policies", "router")
SCENARIOS = [(c, p) for c in CHARTS for p in sorted((paths.CHARTS_DIR / c / "ci").glob("*-values.yaml"))]


@pytest.mark.parametrize(("chart", "values"), SCENARIOS, ids=lambda x: x.name if isinstance(x, Path) else x)
def test_helm_lint_strict_passes_for_every_ci_scenario(helm: str, chart: str, values: Path) -> None:
    render.ensure_dependencies(chart, helm)
    proc = subprocess.run(
        [str(tools.require(helm)), "lint", "--strict", str(paths.CHARTS_DIR / chart), "--values", str(values)],
        capture_output=True, text=True, env=tools.tool_env(), check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("chart", CHARTS)
def test_every_value_has_a_description_in_the_generated_readme(chart: str) -> None:
    text = (paths.CHARTS_DIR / chart / "README.md").read_text()
    values_table = text.split("## Values", 1)[1]
    rows = [line.split("|") for line in values_table.splitlines() if re.match(r"^\| [a-zA-Z]", line)]
    assert rows, f"charts/{chart}/README.md has no values table; run `make docs`"
    undocumented = [r[1].strip() for r in rows if not r[4].strip()]
    assert undocumented == []


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_has_a_scenario_that_changes_many_defaults(chart: str) -> None:
    assert list((paths.CHARTS_DIR / chart / "ci").glob("*many-changes-values.yaml"))
