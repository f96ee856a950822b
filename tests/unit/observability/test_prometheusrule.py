"""charts/observability: monitors, PrometheusRule (checked and unit-tested with promtool), dashboards."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import tools
from llmops.validate import crds, kubeschema, metrics_contract, render
from llmops.validate.render import RenderError

CHART = "observability"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))
PROMTOOL_TESTS = Path(__file__).parent / "promtool"


def _promtool() -> str:
    return str(tools.require("promtool"))


def _groups(manifests: list[render.Manifest]) -> list[dict[str, Any]]:
    (rule,) = render.find(manifests, "PrometheusRule")
    return list(rule["spec"]["groups"])


def _rules(manifests: list[render.Manifest]) -> list[dict[str, Any]]:
    return [r for g in _groups(manifests) for r in g["rules"]]


def _dashboards(manifests: list[render.Manifest]) -> dict[str, dict[str, Any]]:
    out = {}
    for cm in render.find(manifests, "ConfigMap"):
        for key, text in cm["data"].items():
            out[key] = json.loads(text)
    return out


def _dashboard_exprs(manifests: list[render.Manifest]) -> list[str]:
    exprs = []
    for dash in _dashboards(manifests).values():
        for panel in dash["panels"]:
            exprs += [t["expr"] for t in panel["targets"]]
    return exprs


def _promtool_check(tmp_path: Path, groups: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    return subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_render_objects_valid_against_crds_and_kubernetes(render_chart, values: Path) -> None:
    objs = [m.obj for m in render_chart(CHART, [values])]
    assert crds.validate_custom_resources(objs) == []
    assert kubeschema.validate_objects(objs) == []


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_promtool_accepts_the_rendered_rules(render_chart, values: Path, tmp_path: Path) -> None:
    proc = _promtool_check(tmp_path, _groups(render_chart(CHART, [values])))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_of_the_alerts_pass(render_chart, tmp_path: Path) -> None:
    groups = _groups(render_chart(CHART))
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # templates checked by `promtool check rules`; tests pin labels and timing
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = sorted(PROMTOOL_TESTS.glob("*.test.yaml"))
    assert tests, f"no promtool unit tests (*.test.yaml) in {PROMTOOL_TESTS}: nothing would be tested"
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
        proc = subprocess.run(
            [_promtool(), "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_rules_and_dashboards_use_only_contract_metrics(render_chart, values: Path) -> None:
    manifests = render_chart(CHART, [values])
    rules = _rules(manifests) if render.find(manifests, "PrometheusRule") else []
    recorded = {r["record"] for r in rules if "record" in r}
    exprs = [r["expr"] for r in rules] + _dashboard_exprs(manifests)
    unknown = {e: metrics_contract.unknown_metrics(e, recorded) for e in exprs}
    assert {e: u for e, u in unknown.items() if u} == {}


def test_alerts_required_by_the_issue_are_all_present(render_chart) -> None:
    alerts = {r["alert"] for r in _rules(render_chart(CHART)) if "alert" in r}
    assert alerts >= {
        "LlmopsEngineDown",
        "LlmopsQueueGrowing",
        "LlmopsKVCacheSaturated",
        "LlmopsTTFTBudgetBurnFast",
        "LlmopsTTFTBudgetBurnSlow",
        "LlmopsITLBudgetBurnFast",
        "LlmopsITLBudgetBurnSlow",
        "LlmopsErrorRatioHigh",
        "LlmopsGPUXidError",
        "LlmopsGPUECCError",
        "LlmopsEngineRestarting",
        "LlmopsEngineOOMKilled",
    }


def test_thresholds_come_from_values(render_chart) -> None:
    values = {"rules": {"kvCacheSaturated": {"threshold": 0.8, "for": "3m"}, "slo": {"ttft": {"objective": 0.95}}}}
    rules = {r.get("alert"): r for r in _rules(render_chart(CHART, set_values=values))}
    assert rules["LlmopsKVCacheSaturated"]["expr"].endswith("> 0.8")
    assert rules["LlmopsKVCacheSaturated"]["for"] == "3m"
    assert "(14.4 * 0.05)" in rules["LlmopsTTFTBudgetBurnFast"]["expr"]


def test_slo_threshold_matches_the_bucket_however_the_exporter_prints_it(render_chart) -> None:
    rules = _rules(render_chart(CHART, set_values={"rules": {"slo": {"ttft": {"thresholdSeconds": 1}}}}))
    expr = next(r["expr"] for r in rules if r.get("record") == "llmops:ttft_slo_errors:ratio_rate5m")
    matcher = re.search(r'le=~"([^"]+)"', expr)
    assert matcher is not None
    pattern = matcher.group(1).replace("\\\\", "\\")
    assert all(re.fullmatch(pattern, le) for le in ("1", "1.0"))
    assert not re.fullmatch(pattern, "10")


def test_disabled_slo_and_alerts_are_not_rendered(render_chart) -> None:
    values = {"rules": {"slo": {"itl": {"enabled": False}}, "gpuEcc": {"enabled": False}}}
    names = {r.get("alert") or r.get("record") for r in _rules(render_chart(CHART, set_values=values))}
    assert not any(n.startswith(("LlmopsITL", "llmops:itl_slo")) for n in names)
    assert "LlmopsGPUECCError" not in names
    assert "LlmopsTTFTBudgetBurnFast" in names


def test_duplicate_burn_rate_names_fail(render_chart) -> None:
    rate = {"name": "Fast", "severity": "critical", "long": "1h", "short": "5m", "factor": 14.4, "for": "2m"}
    with pytest.raises(RenderError, match=r"observability.rules.slo.burnRates\[1\].name"):
        render_chart(CHART, set_values={"rules": {"slo": {"burnRates": [rate, rate]}}})


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_monitor_selects_engine_pods_and_labels_series_with_model_and_release(render_chart, kind: str) -> None:
    values = {"monitor": {"kind": kind}, "global": {"monitoring": {"prometheusLabels": {"release": "kps"}}}}
    manifests = [m for m in render_chart(CHART, set_values=values) if not m.name.endswith("-router")]
    (monitor,) = render.find(manifests, kind)
    assert len(render.find(manifests, "PodMonitor" if kind == "ServiceMonitor" else "ServiceMonitor")) == 0
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": "llmops",
        "app.kubernetes.io/component": "engine",
    }
    (endpoint,) = monitor["spec"]["endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets["llmops_model"] == ["__meta_kubernetes_pod_label_llmops_io_model"]
    assert targets["llmops_release"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"]


def test_dashboards_are_configmaps_for_the_grafana_sidecar_covering_the_issue_panels(render_chart) -> None:
    manifests = render_chart(CHART, set_values={"dashboards": {"namespace": "grafana"}})
    cms = render.find(manifests, "ConfigMap")
    assert len(cms) == 3
    assert all(cm["metadata"]["labels"]["grafana_dashboard"] == "1" for cm in cms)
    assert all(cm["metadata"]["namespace"] == "grafana" for cm in cms)
    dashboards = _dashboards(manifests)
    titles = {p["title"] for d in dashboards.values() for p in d["panels"]}
    exprs = " ".join(_dashboard_exprs(manifests))
    for needed in ("vllm:request_success_total", "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
                   "vllm:generation_tokens_total", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                   "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_GPU_TEMP",
                   "kube_horizontalpodautoscaler_status_desired_replicas", "kube_horizontalpodautoscaler_status_current_replicas"):
        assert needed in exprs
    assert "Desired vs current replicas" in titles
    assert len({d["uid"] for d in dashboards.values()}) == 3


def test_excluded_dashboard_is_not_rendered(render_chart) -> None:
    names = {cm["metadata"]["name"] for cm in render.find(render_chart(CHART, set_values={"dashboards": {"exclude": ["gpu"]}}), "ConfigMap")}
    assert names == {"llmops-observability-dashboard-serving", "llmops-observability-dashboard-autoscaling"}


def test_disabling_monitor_and_dashboards_leaves_only_rules(render_chart) -> None:
    values = {"monitor": {"enabled": False}, "routerMonitor": {"enabled": False}, "dashboards": {"enabled": False},
              "rules": {"scrapedElsewhere": True}}
    kinds = {m.kind for m in render_chart(CHART, set_values=values)}
    assert kinds == {"PrometheusRule"}


def test_rules_without_a_monitor_are_refused_unless_scraped_elsewhere(render_chart) -> None:
    with pytest.raises(render.RenderError, match=r"observability.rules.enabled: .*monitor.enabled is false"):
        render_chart(CHART, set_values={"monitor": {"enabled": False}})


def test_router_monitor_scrapes_the_router_services_metrics_port_with_the_release_label(render_chart) -> None:
    values = {"global": {"monitoring": {"prometheusLabels": {"release": "kps"}}}}
    monitor = next(m.obj for m in render_chart(CHART, set_values=values) if m.kind == "ServiceMonitor" and m.name.endswith("-router"))
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "router",
        "app.kubernetes.io/instance": "llmops",
        "app.kubernetes.io/component": "router",
    }
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"llmops_release", "pod"}
