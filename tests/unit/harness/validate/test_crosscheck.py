"""crosscheck: selectors, ports, scale targets and duplicates across one render.

Each test builds the smallest set of objects that shows one mistake, and the
same set without the mistake, so a check that always (or never) fires fails.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmops.validate.crosscheck import crosscheck, selector_matches
from llmops.validate.render import Manifest

LABELS = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "r", "app.kubernetes.io/component": "engine"}


def deployment(name: str = "r-llama", labels: dict[str, str] | None = None, port: str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "spec": {
            "selector": {"matchLabels": dict(labels or LABELS)},
            "template": {
                "metadata": {"labels": dict(labels or LABELS)},
                "spec": {"containers": [{"name": "vllm", "ports": [{"name": port, "containerPort": 8000}]}]},
            },
        },
    }


def service(selector: dict[str, str] | None = None, target: Any = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "r-llama", "labels": dict(LABELS)},
        "spec": {"selector": dict(selector or LABELS), "ports": [{"name": "http", "port": 80, "targetPort": target}]},
    }


def checks(*objs: dict[str, Any]) -> set[str]:
    return {f.check for f in crosscheck([Manifest(o, "t.yaml") for o in objs], "ns")}


def test_clean_pair_has_no_findings() -> None:
    assert checks(deployment(), service()) == set()


def test_service_selector_matching_no_pod_is_reported() -> None:
    assert checks(deployment(), service(selector={**LABELS, "llmops.io/model": "other"})) == {"service-selector"}


def test_service_named_target_port_missing_from_pods_is_reported() -> None:
    assert checks(deployment(port="metrics"), service()) == {"service-port"}
    assert checks(deployment(port="metrics"), service(target=8000)) == set()


def test_service_in_other_namespace_does_not_match() -> None:
    svc = service()
    svc["metadata"]["namespace"] = "elsewhere"
    assert checks(deployment(), svc) == {"service-selector"}


def servicemonitor(port: str = "http", selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "sm"},
        "spec": {"selector": {"matchLabels": selector or LABELS}, "endpoints": [{"port": port, "path": "/metrics"}]},
    }


def test_servicemonitor_port_name_must_exist_on_selected_service() -> None:
    assert checks(deployment(), service(), servicemonitor()) == set()
    assert checks(deployment(), service(), servicemonitor(port="metrics")) == {"monitor-port"}


def test_servicemonitor_selecting_nothing_is_reported() -> None:
    assert checks(deployment(), service(), servicemonitor(selector={"app.kubernetes.io/name": "nope"})) == {"monitor-selector"}


def test_servicemonitor_namespace_selector_is_honoured() -> None:
    sm = servicemonitor()
    sm["metadata"]["namespace"] = "monitoring"
    assert checks(deployment(), service(), sm) == {"monitor-selector"}
    sm["spec"]["namespaceSelector"] = {"matchNames": ["ns"]}
    assert checks(deployment(), service(), sm) == set()


def test_podmonitor_port_must_be_a_container_port() -> None:
    pm = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "pm"},
        "spec": {"selector": {"matchLabels": LABELS}, "podMetricsEndpoints": [{"port": "http"}]},
    }
    assert checks(deployment(), pm) == set()
    pm["spec"]["podMetricsEndpoints"][0]["port"] = "metrics"
    assert checks(deployment(), pm) == {"monitor-port"}


def scaledobject(target: str = "r-llama") -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "so"},
        "spec": {"scaleTargetRef": {"name": target}, "triggers": []},
    }


def test_scaledobject_target_must_be_rendered() -> None:
    assert checks(deployment(), scaledobject()) == set()
    assert checks(deployment(), scaledobject("r-mistral")) == {"scale-target"}


def test_hpa_and_scaledobject_on_the_same_deployment_conflict() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "r-llama"}},
    }
    assert checks(deployment(), hpa) == set()
    assert checks(deployment(), scaledobject(), hpa) == {"scale-target"}


def test_pdb_selector_must_match_pods() -> None:
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "pdb"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}},
    }
    assert checks(deployment(), pdb) == set()
    pdb["spec"]["selector"] = {"matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In",
                                                     "values": ["router"]}]}
    assert checks(deployment(), pdb) == {"pdb-selector"}


def netpol(port: Any, selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "np"},
        "spec": {
            "podSelector": {"matchLabels": selector if selector is not None else LABELS},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": port, "protocol": "TCP"}]}],
        },
    }


@pytest.mark.parametrize(("port", "expected"), [("http", set()), (8000, set()), ("metrics", {"networkpolicy-port"}),
                                                (9090, {"networkpolicy-port"})])
def test_networkpolicy_ingress_port_must_exist_on_selected_pods(port: Any, expected: set[str]) -> None:
    assert checks(deployment(), netpol(port)) == expected


def test_networkpolicy_selecting_no_pod_is_reported() -> None:
    assert checks(deployment(), netpol("http", {"app.kubernetes.io/name": "gone"})) == {"networkpolicy-selector"}


def test_duplicate_kind_namespace_name_is_reported() -> None:
    assert checks(deployment(), copy.deepcopy(deployment())) == {"duplicate-object"}
    other = deployment()
    other["metadata"]["namespace"] = "other"
    assert checks(deployment(), other) == set()


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
    ],
)
def test_label_selector_semantics(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_selectors_for_pods_created_at_run_time_by_operators_are_not_judged() -> None:
    # cert-manager creates the ACME solver pods; the policy allowing them is rendered ahead of time.
    acme = netpol(8089, {"acme.cert-manager.io/http01-solver": "true"})
    assert checks(deployment(), acme) == set()
    # ...but a selector that uses our own label keys with a wrong value is a bug.
    assert checks(deployment(), netpol("http", {"app.kubernetes.io/component": "router"})) == {"networkpolicy-selector"}


def test_monitor_of_another_namespace_that_this_release_does_not_render_into_is_not_judged() -> None:
    sm = servicemonitor(selector={"app": "nvidia-dcgm-exporter"})
    sm["spec"]["namespaceSelector"] = {"matchNames": ["gpu-operator"]}
    assert checks(deployment(), service(), sm) == set()
