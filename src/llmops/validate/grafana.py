"""Grafana dashboards: Grafana's own schema, and every PromQL expression through a real PromQL parser.

- :func:`schema_problems` runs the pinned ``dashboard-check`` tool
  (tools/dashboard-check/main.go), which decodes each dashboard strictly into
  the dashboard type of Grafana's foundation SDK.
- :func:`dashboard_queries` lists every PromQL expression of a dashboard:
  panel targets (rows' panels included) and the selectors inside query
  variables (``label_values(<selector>, label)``, ``query_result(<expr>)``).
- :func:`substitute` replaces Grafana's template variables (``$__rate_interval``,
  ``$model``, ``${model}``, ``${model:regex}``, ``[[model]]``) with values
  that keep the expression's syntax, and reports a variable the dashboard
  does not define.
- :func:`promql_problems` parses expressions with the pinned promtool
  (Prometheus' own parser), one run for any number of expressions.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from llmops import tools

# Grafana's global variables, by the value type they expand to.
BUILTIN_VARIABLES: dict[str, str] = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__interval_ms": "60000",
    "__rate_interval_ms": "300000",
    "__range_ms": "3600000",
    "__range_s": "3600",
    "__dashboard": "llmops",
    "__org": "1",
    "__user": "admin",
}
# One token that is valid wherever a template value can stand: a label value
# inside quotes, a regex, a label name in `by (...)`, a metric name.
PLACEHOLDER = "llmops_template_value"

# ${name}, ${name:format}, [[name]], [[name:format]], $name
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
# Grafana's Prometheus variable functions; the argument is PromQL (or a selector).
_VARIABLE_FUNCTIONS = re.compile(r"^\s*(label_values|query_result|metrics|label_names)\s*\((.*)\)\s*$", re.S)


def variable_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Each template variable the dashboard defines -> a value of the right kind for checking."""
    out: dict[str, str] = {}
    for var in (dashboard.get("templating") or {}).get("list") or []:
        name = str(var.get("name", ""))
        if var.get("type") == "interval":
            out[name] = "5m"
        elif var.get("type") == "datasource":
            out[name] = "prometheus"
        else:
            out[name] = PLACEHOLDER
    return out


def substitute(expr: str, variables: Mapping[str, str]) -> tuple[str, list[str]]:
    """EXPR with every Grafana variable replaced, and the names of variables neither built in nor defined."""
    unknown: list[str] = []

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        if name in variables:
            return variables[name]
        unknown.append(name)
        return m.group(0)

    return _VARIABLE.sub(repl, expr), unknown


def _panels(panels: Iterable[Mapping[str, Any]], where: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for i, panel in enumerate(panels):
        here = f"{where}[{i}]"
        yield here, panel
        yield from _panels(panel.get("panels") or [], f"{here}.panels")


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every query of DASHBOARD, before variable substitution."""
    out: list[tuple[str, str]] = []
    for where, panel in _panels(dashboard.get("panels") or [], "panels"):
        for j, target in enumerate(panel.get("targets") or []):
            if "expr" in target:
                out.append((f"{where}.targets[{j}].expr", str(target["expr"])))
    for i, var in enumerate((dashboard.get("templating") or {}).get("list") or []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, Mapping) else str(query or "")
        m = _VARIABLE_FUNCTIONS.match(text)
        if m is None:
            out.append((f"templating.list[{i}].query", text))
            continue
        func, arg = m.group(1), m.group(2).strip()
        if func == "label_values":
            # label_values(label) or label_values(<selector>, label): the selector is PromQL.
            head, sep, _label = arg.rpartition(",")
            if sep:
                out.append((f"templating.list[{i}].query (label_values selector)", head.strip()))
        elif func == "query_result":
            out.append((f"templating.list[{i}].query (query_result)", arg))
    return out


def checked_queries(dashboard: Mapping[str, Any], name: str = "") -> tuple[list[tuple[str, str]], list[str]]:
    """Every query of DASHBOARD with variables substituted, and a problem per undefined variable."""
    variables = variable_values(dashboard)
    queries, problems = [], []
    for where, expr in dashboard_queries(dashboard):
        text, unknown = substitute(expr, variables)
        for var in unknown:
            problems.append(f"{name}{where}: variable ${var} is neither defined in templating nor built into Grafana")
        queries.append((f"{name}{where}", text))
    return queries, problems


def promql_problems(queries: Sequence[tuple[str, str]]) -> list[str]:
    """Parse every (where, expr) with promtool; one problem per expression that does not parse."""
    if not queries:
        raise ValueError("no PromQL expression to check: an empty set proves nothing")
    rules = [{"record": f"llmops_check:q{i}", "expr": expr} for i, (_where, expr) in enumerate(queries)]
    with tempfile.TemporaryDirectory(prefix="llmops-promql-") as tmp:
        path = Path(tmp) / "queries.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "llmops-check", "rules": rules}]}))
        proc = subprocess.run([str(tools.require("promtool")), "check", "rules", str(path)],
                              capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode == 0:
        return []
    problems = []
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.search(r'"llmops_check:q(\d+)": (.*)$', line)
        if m:
            where, expr = queries[int(m.group(1))]
            problems.append(f"{where}: {m.group(2)}\n    {expr}")
    return problems or [f"promtool check rules failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"]


def schema_problems(dashboards: Mapping[str, Mapping[str, Any] | str]) -> list[str]:
    """Check dashboards (name -> JSON object or text) against Grafana's dashboard schema (dashboard-check)."""
    if not dashboards:
        raise ValueError("no dashboard to check: an empty set proves nothing")
    with tempfile.TemporaryDirectory(prefix="llmops-dashboards-") as tmp:
        files = []
        for name, dash in dashboards.items():
            f = Path(tmp) / (Path(name).name if str(name).endswith(".json") else f"{name}.json")
            f.write_text(dash if isinstance(dash, str) else json.dumps(dash))
            files.append(str(f))
        proc = subprocess.run([str(tools.require("dashboard-check")), *files],
                              capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode == 2:
        raise RuntimeError(f"dashboard-check could not run: {proc.stderr.strip()}")
    return [line.replace(tmp + "/", "") for line in proc.stdout.splitlines() if line.strip()]
