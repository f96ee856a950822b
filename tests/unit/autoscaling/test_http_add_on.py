"""Scale from zero behind the KEDA HTTP add-on: what the charts render for a model held at zero replicas.

The autoscaling chart renders the add-on (interceptor, external scaler), one
hold Service and two HTTPScaledObjects per held model, and the ScaledObject's
external-push trigger; the umbrella lists the hold workers the router's
registrar registers. These tests check that the pieces name each other
consistently (the e2e tier proves the path on the real node).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmops import paths
from llmops.validate import crds, kubeschema, render
from llmops.validate.render import RenderError

CHART = "autoscaling"
LOCAL = paths.VALUES_DIR / "local.yaml"


def _kinds(manifests: list[render.Manifest]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        out.setdefault(m.obj["kind"], []).append(m.obj)
    return out


def _named(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs}


def test_a_held_model_gets_the_add_on_a_hold_route_a_health_route_and_an_external_push_trigger(render_chart) -> None:
    values = {"models": {"idle": {"minReplicas": 0, "maxReplicas": 3, "scaleToZero": {"holdTimeout": "90s"}},
                         "busy": {"minReplicas": 1}}}  # fmt: skip
    manifests = render_chart(CHART, set_values=values, release="as", namespace="ns")
    kinds = _kinds(manifests)
    objs = [m.obj for m in manifests]
    assert crds.validate_custom_resources(objs) == [] and kubeschema.validate_objects(objs) == []

    deployments = _named(kinds["Deployment"])
    assert set(deployments) == {"as-autoscaling-interceptor", "as-autoscaling-scaler"}
    scaler_env = {e["name"]: e["value"] for e in deployments["as-autoscaling-scaler"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert scaler_env["KEDA_HTTP_SCALER_TARGET_ADMIN_SERVICE"] == "as-autoscaling-interceptor-admin"
    assert scaler_env["KEDA_HTTP_SCALER_TARGET_ADMIN_DEPLOYMENT"] == "as-autoscaling-interceptor"

    routes = _named(kinds["HTTPScaledObject"])
    assert set(routes) == {"as-idle", "as-idle-hold-health"}, "only the held model is routed"
    hold = routes["as-idle"]["spec"]
    assert hold["hosts"] == ["as-idle-hold.ns.svc"] and hold["pathPrefixes"] == ["/v1"]
    assert hold["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "as-idle",
                                      "service": "as-idle", "port": 8000}  # fmt: skip
    assert hold["timeouts"]["conditionWait"] == "90s"
    # the add-on's operator must not create a second ScaledObject for the same Deployment
    assert routes["as-idle"]["metadata"]["annotations"]["httpscaledobject.keda.sh/skip-scaledobject-creation"] == "true"
    health = routes["as-idle-hold-health"]["spec"]
    assert health["hosts"] == hold["hosts"] and health["pathPrefixes"] == ["/health"]
    assert health["scaleTargetRef"]["service"] == "as-router", "health checks must not reach (and wake) the model"

    services = _named(kinds["Service"])
    interceptor_labels = deployments["as-autoscaling-interceptor"]["spec"]["template"]["metadata"]["labels"]
    assert services["as-idle-hold"]["spec"]["selector"].items() <= interceptor_labels.items()

    so = _named(kinds["ScaledObject"])
    pushes = [t for t in so["as-idle"]["spec"]["triggers"] if t["type"] == "external-push"]
    assert pushes == [{"type": "external-push", "name": "held-requests",
                       "metadata": {"scalerAddress": "as-autoscaling-scaler.ns.svc:9090", "httpScaledObject": "as-idle"}}]
    assert not [t for t in so["as-busy"]["spec"]["triggers"] if t["type"] == "external-push"]
    assert not [t for t in so["as-idle"]["spec"]["triggers"] if t["name"] == "activation"], "no PromQL activation needed"


def test_no_model_at_zero_or_holder_none_renders_no_add_on(render_chart) -> None:
    for models in ({"busy": {"minReplicas": 1}},
                   {"idle": {"minReplicas": 0, "scaleToZero": {"holder": "none", "activationQuery": "sum(up)"}}}):
        kinds = _kinds(render_chart(CHART, set_values={"models": models}))
        assert "HTTPScaledObject" not in kinds and "Deployment" not in kinds and "ClusterRole" not in kinds, models


@pytest.mark.parametrize(("override", "expect"), [
    # the schema answers first, naming the path
    ({"scaleToZero": {"holder": "queue"}}, "/models/idle/scaleToZero/holder': value must be one of 'httpAddOn', 'none'"),
    ({"scaleToZero": {"holdTimeout": "ten minutes"}}, "/models/idle/scaleToZero/holdTimeout': 'ten minutes' does not match"),
    ({"scaleToZero": {"holder": "none"}}, "autoscaling.models.idle.scaleToZero.activationQuery: required with minReplicas 0 and scaleToZero.holder none"),
])  # fmt: skip
def test_bad_scale_to_zero_settings_fail_naming_the_values_path(render_chart, override: dict[str, Any], expect: str) -> None:
    with pytest.raises(RenderError) as err:
        render_chart(CHART, set_values={"models": {"idle": {"minReplicas": 0, **override}}})
    assert expect in str(err.value)


def test_umbrella_lists_one_hold_worker_per_served_name_at_the_host_the_route_matches(render_chart) -> None:
    values = {"autoscaling": {"enabled": True, "models": {"tiny": {"minReplicas": 0, "maxReplicas": 2}}},
              "networkPolicies": {"httpAddOn": {"enabled": True}}}
    manifests = render_chart("llmops-stack", [LOCAL], set_values=values, release="llmops", namespace="llm")
    kinds = _kinds(manifests)
    cm = _named(kinds["ConfigMap"])["llmops-router-hold-workers"]
    workers = json.loads(cm["data"]["workers.json"])
    engine = _named(kinds["Deployment"])["llmops-tiny"]
    args = engine["spec"]["template"]["spec"]["containers"][0]["args"]
    served_name = args[args.index("--served-model-name") + 1]
    assert workers == [{"url": "http://llmops-tiny-hold.llm.svc:8080", "model_id": served_name}]
    route = _named(kinds["HTTPScaledObject"])["llmops-tiny"]
    assert route["spec"]["hosts"] == ["llmops-tiny-hold.llm.svc"]
    # the router pod runs the registrar and mounts that ConfigMap
    router = _named(kinds["Deployment"])["llmops-router"]["spec"]["template"]["spec"]
    assert "hold-registrar" in [c["name"] for c in router["containers"]]
    assert {"name": "hold-workers", "configMap": {"name": "llmops-router-hold-workers", "optional": True}} in router["volumes"]


def test_umbrella_refuses_a_held_model_whose_path_the_network_policies_would_drop(render_chart) -> None:
    values = {"autoscaling": {"enabled": True, "models": {"tiny": {"minReplicas": 0}}}}
    with pytest.raises(RenderError) as err:
        render_chart("llmops-stack", [LOCAL], set_values=values)
    assert "networkPolicies.httpAddOn.enabled: must be true while a model scales to zero" in str(err.value)


def test_umbrella_refuses_a_held_model_without_the_router_that_would_hold_it(render_chart) -> None:
    values = {"router": {"enabled": False}, "networkPolicies": {"router": {"enabled": False}},
              "autoscaling": {"enabled": True, "models": {"tiny": {"minReplicas": 0}}}}  # fmt: skip
    with pytest.raises(RenderError) as err:
        render_chart("llmops-stack", [LOCAL], set_values=values)
    assert "autoscaling.models.tiny.scaleToZero.holder: httpAddOn holds the model's requests behind the router" in str(err.value)
