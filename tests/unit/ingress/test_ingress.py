"""charts/ingress: the public entry to the router - Gateway API (default) or Ingress, cert-manager TLS, rate limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from llmops.validate import crds, kubeschema, render
from llmops.validate.render import RenderError

CHART = "ingress"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))
BASE: dict[str, Any] = {"hosts": ["llm.example.com"], "mode": "ingress"}


def _values(**extra: Any) -> dict[str, Any]:
    return {**BASE, **extra}


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_render_objects_valid_against_crds_and_kubernetes(render_chart, values: Path) -> None:
    objs = [m.obj for m in render_chart(CHART, [values])]
    assert crds.validate_custom_resources(objs) == []
    assert kubeschema.validate_objects(objs) == []


def test_ingress_sends_only_the_openai_api_to_the_router_service(render_chart) -> None:
    ing = render.find_one(render_chart(CHART, set_values=_values()), "Ingress")
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "llm.example.com"
    assert rule["http"]["paths"] == [{"path": "/v1", "pathType": "Prefix", "backend": {"service": {"name": "llmops-router", "port": {"number": 8000}}}}]


@pytest.mark.parametrize(("key", "value", "replacement"), [("routes", [{"path": "/", "model": "chat"}], "delete ingress.routes"), ("servicePort", 8000, "ingress.backend.port")])
def test_removed_route_keys_fail_naming_the_key_and_its_replacement(render_chart, key: str, value: Any, replacement: str) -> None:
    with pytest.raises(RenderError, match=rf"ingress\.{key}: removed;.*{re.escape(replacement)}"):
        render_chart(CHART, set_values=_values(**{key: value}))


def test_nginx_annotations_stream_tokens_without_buffering_and_with_long_timeouts(render_chart) -> None:
    ann = render.find_one(render_chart(CHART, set_values=_values(streaming={"readTimeoutSeconds": 1200})), "Ingress")["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "1200"
    assert ann["nginx.ingress.kubernetes.io/proxy-body-size"] == "16m"
    assert not any("limit-" in k for k in ann)


def test_rate_limit_adds_per_client_limits(render_chart) -> None:
    ann = render.find_one(render_chart(CHART, set_values=_values(rateLimit={"enabled": True, "requestsPerSecond": 7})), "Ingress")["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/limit-rps"] == "7"
    assert ann["nginx.ingress.kubernetes.io/limit-connections"] == "20"


def test_other_controller_gets_only_the_users_annotations(render_chart) -> None:
    values = _values(ingress={"className": "traefik", "controller": "other", "annotations": {"a": "b"}})
    ing = render.find_one(render_chart(CHART, set_values=values), "Ingress")
    assert ing["metadata"]["annotations"] == {"a": "b"}
    assert ing["spec"]["ingressClassName"] == "traefik"


def test_self_signed_tls_renders_issuer_and_certificate_for_the_hosts(render_chart) -> None:
    manifests = render_chart(CHART, set_values=_values())
    cert = render.find_one(manifests, "Certificate")
    issuer = render.find_one(manifests, "Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert cert["spec"]["issuerRef"] == {"name": issuer["metadata"]["name"], "kind": "Issuer", "group": "cert-manager.io"}
    assert cert["spec"]["dnsNames"] == ["llm.example.com"]
    ing = render.find_one(manifests, "Ingress")
    assert ing["spec"]["tls"] == [{"hosts": ["llm.example.com"], "secretName": cert["spec"]["secretName"]}]


@pytest.mark.parametrize(("solver", "extra"), [("http01", {}), ("dns01", {"dns01": {"route53": {"region": "eu-west-1"}}})])
def test_acme_renders_a_cluster_issuer_with_the_chosen_challenge(render_chart, solver: str, extra: dict[str, Any]) -> None:
    acme = {"email": "ops@example.com", "solver": solver, **extra}
    manifests = render_chart(CHART, set_values=_values(tls={"certManager": {"issuer": "acme", "acme": acme}}))
    ci = render.find_one(manifests, "ClusterIssuer")
    (s,) = ci["spec"]["acme"]["solvers"]
    assert list(s) == [solver]
    if solver == "http01":
        assert s["http01"]["ingress"]["ingressClassName"] == "nginx"
    assert render.find_one(manifests, "Certificate")["spec"]["issuerRef"]["kind"] == "ClusterIssuer"


def test_existing_secret_renders_no_certificate(render_chart) -> None:
    manifests = render_chart(CHART, set_values=_values(tls={"source": "existingSecret", "secretName": "mine"}))
    assert not render.find(manifests, "Certificate")
    assert render.find_one(manifests, "Ingress")["spec"]["tls"][0]["secretName"] == "mine"


def test_tls_without_hosts_fails_and_names_the_path(render_chart) -> None:
    with pytest.raises(RenderError, match=r"ingress.tls.enabled: TLS needs at least one entry in ingress.hosts"):
        render_chart(CHART, set_values={"mode": "ingress"})


def test_every_problem_is_reported_at_once(render_chart) -> None:
    values = {"hosts": ["a.example.com"], "tls": {"certManager": {"issuer": "acme", "acme": {"solver": "dns01"}}}}
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values=values)
    assert "ingress.gateway.className" in str(err.value)
    assert "ingress.tls.certManager.acme.email" in str(err.value)


def test_gateway_is_the_default_mode_with_a_gateway_serving_the_cert_manager_certificate(render_chart) -> None:
    manifests = render_chart(CHART, set_values={"hosts": ["llm.example.com"], "gateway": {"className": "eg"}})
    assert not render.find(manifests, "Ingress")
    gw = render.find_one(manifests, "Gateway")
    cert = render.find_one(manifests, "Certificate")
    assert gw["spec"]["gatewayClassName"] == "eg"
    (listener,) = gw["spec"]["listeners"]
    assert listener["protocol"] == "HTTPS" and listener["port"] == 443 and listener["hostname"] == "llm.example.com"
    assert listener["tls"]["certificateRefs"] == [{"kind": "Secret", "group": "", "name": cert["spec"]["secretName"]}]
    route = render.find_one(manifests, "HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": gw["metadata"]["name"], "sectionName": "https"}]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": "llmops-router", "port": 8000}]
    assert rule["timeouts"] == {"request": "600s"}
    # The router's admin API (POST /workers ...) shares the port: only /v1 is public.
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]


def test_gateway_mode_can_attach_to_an_existing_gateway(render_chart) -> None:
    values = {"gateway": {"create": False, "parentRefs": [{"name": "gw", "namespace": "infra"}], "requestTimeout": "300s"}, "tls": {"enabled": False}}
    manifests = render_chart(CHART, set_values=values)
    assert not render.find(manifests, "Gateway")
    route = render.find_one(manifests, "HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "gw", "namespace": "infra"}]
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "300s"}


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"gateway": {"create": False}}, "ingress.gateway.parentRefs"),
        ({"hosts": ["a.example.com"]}, "ingress.gateway.className"),
        ({"hosts": ["a.example.com"], "gateway": {"className": "eg"}, "rateLimit": {"enabled": True}}, "router.limits.rateLimitPerSecond"),
        ({"mode": "ingress", "hosts": ["a.example.com"], "ingress": {"controller": "other"}, "rateLimit": {"enabled": True}}, "router.limits.rateLimitPerSecond"),
    ],
)
def test_gateway_and_rate_limit_problems_fail_naming_the_path(render_chart, values: dict[str, Any], path: str) -> None:
    with pytest.raises(RenderError, match=re.escape(path)):
        render_chart(CHART, set_values=values)


def test_schema_rejects_an_uppercase_host(render_chart) -> None:
    with pytest.raises(RenderError, match="hosts"):
        render_chart(CHART, set_values=_values(hosts=["LLM.example.com"]))


def test_without_hosts_and_tls_the_rule_matches_any_host(render_chart) -> None:
    ing = render.find_one(render_chart(CHART, set_values={"mode": "ingress", "tls": {"enabled": False}}), "Ingress")
    (rule,) = ing["spec"]["rules"]
    assert "host" not in rule
    assert "tls" not in ing["spec"]


def test_one_rule_per_host(render_chart) -> None:
    ing = render.find_one(render_chart(CHART, set_values=_values(hosts=["a.example.com", "b.example.com"])), "Ingress")
    assert [r["host"] for r in ing["spec"]["rules"]] == ["a.example.com", "b.example.com"]
