"""The concern subcharts wired into the umbrella: conditions, cross-chart rules, and the
objects of every environment file fitting together (targets, selectors, ports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmops import environments, paths
from llmops.validate import crds, render
from llmops.validate.render import RenderError

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
def test_public_entry_is_a_gateway_whose_route_targets_the_router_service(render_chart, env: str) -> None:
    manifests = render_chart(CHART, _env(env))
    services = _by_name(manifests, "Service")
    assert not render.find(manifests, "Ingress")
    gateway = render.find_one(manifests, "Gateway")
    (listener,) = gateway["spec"]["listeners"]
    assert listener["protocol"] == "HTTPS", f"{env} serves HTTPS"
    secret = listener["tls"]["certificateRefs"][0]["name"]
    for cert in render.find(manifests, "Certificate"):  # none where the Secret is brought (air-gapped)
        assert cert["spec"]["secretName"] == secret
    route = render.find_one(manifests, "HTTPRoute")
    assert route["spec"]["parentRefs"][0]["name"] == gateway["metadata"]["name"]
    (rule,) = route["spec"]["rules"]
    (backend,) = rule["backendRefs"]
    router = services[backend["name"]]
    assert router["metadata"]["labels"]["app.kubernetes.io/component"] == "router"
    assert backend["port"] in {p["port"] for p in router["spec"]["ports"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_router_discovers_the_engine_pods_of_every_model(render_chart, env: str) -> None:
    manifests = render_chart(CHART, _env(env))
    router = _by_name(manifests, "Deployment")["llmops-router"]
    args = router["spec"]["template"]["spec"]["containers"][0]["args"]
    rest = args[args.index("--selector") + 1 :]
    end = next(i for i, a in enumerate(rest) if a.startswith("--"))
    selector = dict(a.split("=", 1) for a in rest[:end])
    assert selector
    engines = [d for d in render.find(manifests, "Deployment") if d["metadata"]["labels"].get("app.kubernetes.io/component") == "engine"]
    assert engines
    for dep in engines:
        assert _selects(selector, dep["spec"]["template"]["metadata"]["labels"]), dep["metadata"]["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_pod_is_isolated_by_the_default_deny_policy(render_chart, env: str) -> None:
    manifests = render_chart(CHART, _env(env))
    denies = [p for p in render.find(manifests, "NetworkPolicy") if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"] and "egress" not in p["spec"]]
    assert len(denies) == 1
    assert denies[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_air_gapped_environment_has_no_egress_beyond_dns_and_the_routers_api_server_watch(render_chart) -> None:
    policies = render.find(render_chart(CHART, _env("air-gapped")), "NetworkPolicy")
    with_ip_blocks = [(p["metadata"]["name"], rule) for p in policies for rule in p["spec"].get("egress", []) if any("ipBlock" in peer for peer in rule.get("to", []))]
    assert [name for name, _ in with_ip_blocks] == ["llmops-netpol-allow-router-egress"]
    assert {port["port"] for _, rule in with_ip_blocks for port in rule["ports"]} == {443, 6443}


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


def test_autoscaling_key_must_name_a_vllm_model(render_chart) -> None:
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values={"autoscaling": {"enabled": True, "models": {"chatt": {}}}})
    assert 'autoscaling.models.chatt: no model named "chatt"' in str(err.value)


def test_public_entry_needs_the_router_or_another_backend(render_chart) -> None:
    values = {"router": {"enabled": False}, "ingress": {"enabled": True, "hosts": ["llm.example.com"], "gateway": {"className": "eg"}}}
    with pytest.raises(RenderError, match=r"ingress\.enabled: the public entry sends every request to the router"):
        render_chart(CHART, set_values=values)


def test_network_policies_follow_the_router_switch(render_chart) -> None:
    values = {"global": {"networkPolicy": {"enabled": True}}, "router": {"enabled": False}}
    with pytest.raises(RenderError, match=r"networkPolicies\.router\.enabled: must follow router\.enabled"):
        render_chart(CHART, set_values=values)
    kinds = {m.name for m in render_chart(CHART, set_values={**values, "networkPolicies": {"router": {"enabled": False}}}) if m.kind == "NetworkPolicy"}
    assert "llmops-netpol-allow-router-to-engines" not in kinds


def test_network_policy_names_are_valid_under_the_alias(render_chart) -> None:
    policies = render.find(render_chart(CHART, set_values={"global": {"networkPolicy": {"enabled": True}}}), "NetworkPolicy")
    assert policies and all(p["metadata"]["name"].startswith("llmops-netpol-") for p in policies)


def test_inference_pool_mode_routes_the_gateway_to_the_pool(render_chart) -> None:
    values = {
        "router": {"mode": "inferencePool", "inferencePool": {"endpointPicker": {"serviceName": "epp"}}},
        "ingress": {"enabled": True, "hosts": ["llm.example.com"], "gateway": {"className": "eg"}, "backend": {"kind": "InferencePool"}},
    }
    manifests = render_chart(CHART, set_values=values)
    assert crds.validate_custom_resources(manifests) == []
    pool = render.find_one(manifests, "InferencePool")
    (backend,) = render.find_one(manifests, "HTTPRoute")["spec"]["rules"][0]["backendRefs"]
    assert backend == {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool["metadata"]["name"]}
    assert "llmops-router" not in {m.name for m in manifests if m.kind == "Deployment"}
    values["ingress"]["backend"] = {"kind": "Service"}
    with pytest.raises(RenderError, match=r"ingress\.backend\.kind: \"Service\", but router\.mode is \"inferencePool\""):
        render_chart(CHART, set_values=values)
