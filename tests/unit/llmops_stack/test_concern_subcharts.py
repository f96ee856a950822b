"""The concern subcharts wired into the umbrella: conditions, cross-chart rules, and the
objects of every environment file fitting together (targets, selectors, ports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmops import crds, environments, paths, render
from llmops.render import RenderError

CHART = "llmops-stack"
ENVIRONMENTS = ["local", "staging", "production-h100", "production-70b", "air-gapped"]


def _env(name: str) -> list[Path]:
    """The environment file, with the test-only digests over its placeholders (if it has any)."""
    return environments.test_layers([paths.VALUES_DIR / f"{name}.yaml"])


def _by_name(manifests: list[render.Manifest], kind: str) -> dict[str, dict[str, Any]]:
    return {m.name: m.obj for m in manifests if m.kind == kind}


def _selects(match: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_custom_resources_match_the_pinned_crds(render_chart, env: str) -> None:
    assert crds.validate_custom_resources(render_chart(CHART, _env(env))) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_autoscaler_targets_an_engine_deployment_of_the_release(render_chart, env: str) -> None:
    manifests = render_chart(CHART, _env(env))
    deployments = _by_name(manifests, "Deployment")
    scalers = render.find(manifests, "ScaledObject") + render.find(manifests, "HorizontalPodAutoscaler")
    assert scalers, f"{env} enables autoscaling"
    for so in scalers:
        target = so["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        labels = deployments[target]["spec"]["template"]["metadata"]["labels"]
        assert labels["llmops.io/model"] == so["metadata"]["labels"]["llmops.io/model"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_engine_monitor_selects_the_engine_services_and_their_metrics_port(render_chart, env: str) -> None:
    manifests = render_chart(CHART, _env(env))
    services = [s for s in render.find(manifests, "Service") if s["metadata"]["labels"].get("app.kubernetes.io/component") == "engine"]
    monitors = [m for m in render.find(manifests, "ServiceMonitor") if m["metadata"]["name"].endswith("-engines")]
    assert len(monitors) == 1 and services
    monitor = monitors[0]
    for svc in services:
        assert _selects(monitor["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
        assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if e != "local"])
def test_ingress_backends_are_engine_services_with_the_named_port(render_chart, env: str) -> None:
    manifests = render_chart(CHART, _env(env))
    services = _by_name(manifests, "Service")
    (ingress,) = render.find(manifests, "Ingress")
    assert ingress["spec"]["rules"], f"{env}: the Ingress has no rule"
    for rule in ingress["spec"]["rules"]:
        assert rule["http"]["paths"], f"{env}: an Ingress rule has no path"
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
    assert ingress["spec"]["tls"], f"{env} serves HTTPS"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_pod_is_isolated_by_the_default_deny_policy(render_chart, env: str) -> None:
    manifests = render_chart(CHART, _env(env))
    denies = [p for p in render.find(manifests, "NetworkPolicy") if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] and "egress" not in p["spec"]]
    assert len(denies) == 1
    assert denies[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_air_gapped_environment_has_no_egress_beyond_dns(render_chart) -> None:
    policies = render.find(render_chart(CHART, _env("air-gapped")), "NetworkPolicy")
    ip_blocks = [peer for p in policies for rule in p["spec"].get("egress", []) for peer in rule.get("to", []) if "ipBlock" in peer]
    assert ip_blocks == []


def test_global_switches_enable_observability_and_network_policies_unless_the_block_says_otherwise(render_chart) -> None:
    # no GPUs here: the DCGM alerts would read series nothing scrapes (a rule refuses them)
    no_gpu_alerts = {"rules": {"gpuXid": {"enabled": False}, "gpuEcc": {"enabled": False}}}
    on = {"global": {"monitoring": {"enabled": True}, "networkPolicy": {"enabled": True}}, "observability": no_gpu_alerts}
    kinds = {m.kind for m in render_chart(CHART, set_values=on)}
    assert {"PrometheusRule", "NetworkPolicy"} <= kinds
    off = {**on, "observability": {**no_gpu_alerts, "enabled": False}, "networkPolicies": {"enabled": False}}
    kinds = {m.kind for m in render_chart(CHART, set_values=off)}
    assert not kinds & {"PrometheusRule", "NetworkPolicy", "ServiceMonitor"}


def test_concern_subcharts_are_off_by_default(render_chart) -> None:
    kinds = {m.kind for m in render_chart(CHART)}
    assert not kinds & {"ScaledObject", "Ingress", "Certificate", "NetworkPolicy", "PrometheusRule", "PriorityClass"}


def test_autoscaling_key_and_ingress_route_must_name_vllm_models(render_chart) -> None:
    values = {
        "autoscaling": {"enabled": True, "models": {"chatt": {}}},
        "ingress": {"enabled": True, "hosts": ["llm.example.com"], "routes": [{"path": "/", "model": "nope"}]},
    }
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values=values)
    assert 'autoscaling.models.chatt: no model named "chatt"' in str(err.value)
    assert 'ingress.routes[0].model: no model named "nope"' in str(err.value)


def test_network_policy_names_are_valid_under_the_alias(render_chart) -> None:
    policies = render.find(render_chart(CHART, set_values={"global": {"networkPolicy": {"enabled": True}}}), "NetworkPolicy")
    assert policies and all(p["metadata"]["name"].startswith("llmops-netpol-") for p in policies)
