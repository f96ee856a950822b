"""kubeschema: offline Kubernetes OpenAPI validation of rendered objects."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llmops.validate import kubeschema

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "engine"},
    "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1", "ports": [{"containerPort": 8000}]}]},
        },
    },
}


def test_valid_deployment_has_no_findings_on_any_supported_version() -> None:
    assert kubeschema.validate_objects([DEPLOYMENT]) == []


def test_unknown_container_field_is_reported_with_its_path_for_each_version() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    findings = kubeschema.validate_objects([bad])
    assert {f.version for f in findings} == set(kubeschema.DEFAULT_VERSIONS)
    assert all(f.path == "spec.template.spec.containers.0" for f in findings)
    assert all("imagePullPolicyy" in f.message and f.kind == "Deployment" and f.name == "engine" for f in findings)


def test_string_container_port_is_a_type_error() -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"
    findings = kubeschema.validate_objects([bad], versions=("1.35.0",))
    assert [f.path for f in findings] == ["spec.template.spec.containers.0.ports.0.containerPort"]


def test_custom_resources_are_skipped_but_removed_builtin_apis_are_findings() -> None:
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "m"}, "spec": 1}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}}
    old_pdb = {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}}
    findings = kubeschema.validate_objects([monitor, route, old_pdb], versions=("1.34.0",))
    assert [(f.kind, f.name) for f in findings] == [("PodDisruptionBudget", "p")]
    assert "does not serve" in findings[0].message


def test_version_without_schemas_raises_with_the_available_list() -> None:
    with pytest.raises(ValueError, match="no schemas for Kubernetes 1.99"):
        kubeschema.validate_objects([DEPLOYMENT], versions=("1.99.0",))
