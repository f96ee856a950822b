"""Dashboards against Grafana's own dashboard schema; every PromQL expression through Prometheus' parser.

Expressions come from what ships: every dashboard (panels, rows' panels and
query variables), every PrometheusRule and every KEDA Prometheus trigger,
rendered for every environment and every ci/ scenario of the charts that
carry them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from llmops import paths
from llmops.validate import grafana, render

DASHBOARDS = sorted((render.chart_path("observability") / "dashboards").glob("*.json"))
TEST_OVERLAYS = sorted((paths.REPO_ROOT / "tests" / "fixtures" / "overlays").glob("*.yaml"))
RENDERS: list[tuple[str, tuple[Path, ...]]] = [
    *[("llmops-stack", (env, *TEST_OVERLAYS)) for env in sorted(paths.VALUES_DIR.glob("*.yaml"))],
    *[(chart, (ci,)) for chart in ("observability", "autoscaling")
      for ci in sorted((render.chart_path(chart) / "ci").glob("*-values.yaml"))],
]
# Renders that carry no monitoring object at all (the real engine on a laptop; CPU-metric HPAs).
NO_PROMQL = {"local-vllm", "03-hpa-values"}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _rendered_queries(manifests: list[render.Manifest]) -> tuple[list[tuple[str, str]], list[str]]:
    queries: list[tuple[str, str]] = []
    problems: list[str] = []
    for m in manifests:
        if m.kind == "ConfigMap" and (m.obj["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "dashboard":
            for key, text in m.obj["data"].items():
                q, p = grafana.checked_queries(json.loads(text), f"ConfigMap/{m.name}[{key}].")
                queries += q
                problems += p
        elif m.kind == "PrometheusRule":
            for g in m.obj["spec"]["groups"]:
                for i, rule in enumerate(g["rules"]):
                    queries.append((f"PrometheusRule/{m.name} group {g['name']} rule {i}", str(rule["expr"])))
        elif m.kind == "ScaledObject":
            for t in m.obj["spec"]["triggers"]:
                if t["type"] == "prometheus":
                    queries.append((f"ScaledObject/{m.name} trigger {t.get('name', '?')}", str(t["metadata"]["query"])))
    return queries, problems


def test_shipped_dashboards_match_grafanas_dashboard_schema() -> None:
    assert DASHBOARDS, "no dashboard in charts/observability/dashboards"
    assert grafana.schema_problems({p.name: p.read_text() for p in DASHBOARDS}) == []


def test_rendered_dashboard_configmaps_match_grafanas_dashboard_schema() -> None:
    manifests = render.render("observability", [], helm="helm3")
    dashboards = {f"{m.name}-{k}": v for m in manifests if m.kind == "ConfigMap" for k, v in m.obj["data"].items()}
    assert len(dashboards) == len(DASHBOARDS)
    assert grafana.schema_problems(dashboards) == []


def test_schema_check_rejects_unknown_fields_wrong_types_unknown_panels_and_untyped_queries() -> None:
    good = _load(render.chart_path("observability") / "dashboards" / "serving.json")
    typo, wrong_type, bad_panel, untyped, missing = (copy.deepcopy(good) for _ in range(5))
    typo["pannels"] = typo.pop("panels")
    wrong_type["refresh"] = 30  # a string in Grafana's schema
    bad_panel["panels"][0]["type"] = "timeseriess"
    untyped["panels"][0].pop("datasource", None)
    for t in untyped["panels"][0]["targets"]:
        t.pop("datasource", None)
    missing["panels"][0].pop("type")
    out = grafana.schema_problems({"typo": typo, "wrong_type": wrong_type, "bad_panel": bad_panel,
                                   "untyped": untyped, "missing": missing})
    by_file = {name: [line for line in out if line.startswith(f"{name}.json:")]
               for name in ("typo", "wrong_type", "bad_panel", "untyped", "missing")}
    assert any("pannels" in line for line in by_file["typo"]), out
    assert any("refresh" in line for line in by_file["wrong_type"]), out
    assert any("timeseriess" in line for line in by_file["bad_panel"]), out
    assert any("panels[0].targets[0]" in line and "unknown datasource type" in line for line in by_file["untyped"]), out
    assert any("panels[0]" in line and "'type'" in line for line in by_file["missing"]), out


@pytest.mark.parametrize("chart,values", RENDERS,
                         ids=lambda x: x if isinstance(x, str) else "+".join(p.stem for p in x) or "defaults")
def test_every_promql_expression_parses_with_prometheus_parser(chart: str, values: tuple[Path, ...]) -> None:
    queries, problems = _rendered_queries(render.render(chart, list(values), helm="helm3"))
    assert not problems
    if values[0].stem in NO_PROMQL:
        assert queries == [], f"{values[0].name} now renders PromQL: drop it from NO_PROMQL so it is parsed"
        return
    assert queries, f"{chart} {[v.name for v in values]}: renders no dashboard, rule or trigger"
    assert grafana.promql_problems(queries) == []


def test_every_shipped_dashboard_query_parses_with_variables_substituted() -> None:
    queries: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        q, problems = grafana.checked_queries(_load(path), f"{path.name}:")
        assert not problems
        queries += q
    assert len(queries) >= 20
    assert not [q for _, q in queries if "$" in q or "[[" in q], "a Grafana variable survived substitution"
    assert grafana.promql_problems(queries) == []


def test_broken_expression_and_undefined_variable_are_named() -> None:
    dashboard = {
        "templating": {"list": [{"name": "model", "type": "query",
                                 "query": {"query": 'label_values(vllm:num_requests_running{namespace="x"}, llmops_model)'}}]},
        "panels": [
            {"type": "row", "panels": [{"type": "timeseries", "targets": [
                {"expr": 'sum(rate(vllm:request_success_total{llmops_model=~"${model:regex}"}[$__rate_interval])'}]}]},
            {"type": "timeseries", "targets": [{"expr": 'sum(up{job="$jobb"})'}]},
        ],
    }
    queries, problems = grafana.checked_queries(dashboard)
    assert problems == ["panels[1].targets[0].expr: variable $jobb is neither defined in templating nor built into Grafana"]
    assert [w for w, _ in queries] == ["panels[0].panels[0].targets[0].expr", "panels[1].targets[0].expr",
                                       "templating.list[0].query (label_values selector)"]
    (problem,) = grafana.promql_problems(queries[:1] + queries[2:])
    assert problem.startswith("panels[0].panels[0].targets[0].expr:") and "parse error" in problem


def test_substitute_handles_every_grafana_variable_syntax() -> None:
    text, unknown = grafana.substitute("a{m=~\"${model:regex}\",n=\"[[ns]]\",o=\"$model\"}[$__rate_interval] $nope",
                                       {"model": "M", "ns": "N"})
    assert text == 'a{m=~"M",n="N",o="M"}[5m] $nope'
    assert unknown == ["nope"]


def test_an_empty_set_of_expressions_or_dashboards_is_an_error_not_a_pass() -> None:
    with pytest.raises(ValueError):
        grafana.promql_problems([])
    with pytest.raises(ValueError):
        grafana.schema_problems({})
