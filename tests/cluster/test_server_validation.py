"""The real API server's verdict on what the charts render: what offline checks cannot see.

llmops.validate.crds validates custom resources against the pinned CRDs' structural
schemas offline; the CEL rules of those CRDs (``x-kubernetes-validations``)
are evaluated here, by the API server of the cluster tier, which has the same
pinned CRDs installed. Every object of every environment goes through a
server-side dry run with strict field validation; Pod Security warnings for
workload templates count as failures too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmops import cluster, paths
from llmops.validate import crds, render

UMBRELLA = paths.CHARTS_DIR / "llmops-stack"
ENV_FILES = sorted(paths.VALUES_DIR.glob("*.yaml"))
# Test-only overlays (e.g. digests for files whose placeholders the chart refuses) layer on every environment.
TEST_OVERLAYS = sorted((paths.REPO_ROOT / "tests" / "fixtures" / "overlays").glob("*.yaml"))


def _scaled_object(minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"so-{minimum}-{maximum}"},
        "spec": {
            "scaleTargetRef": {"name": "engine"},
            "minReplicaCount": minimum,
            "maxReplicaCount": maximum,
            "triggers": [{"type": "prometheus", "metadata": {
                "serverAddress": "http://prometheus:9090", "query": "sum(vllm:num_requests_waiting)", "threshold": "5"}}],
        },
    }


def _http_route(path: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "route-" + ("absolute" if path.startswith("/") else "relative")},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                       "backendRefs": [{"name": "engine", "port": 8000}]}],
        },
    }


def test_cel_only_violations_pass_the_offline_schema_and_the_server_refuses_them(
    local_cluster: cluster.ClusterInfo, namespace: str
) -> None:
    bad = [_scaled_object(5, 2), _http_route("v1")]
    # Structurally valid: only the CRDs' CEL rules forbid these.
    assert crds.validate_custom_resources(bad) == []
    so, route = cluster.server_dry_run(local_cluster.name, bad, namespace)
    assert not so.accepted and "minReplicaCount must be less than or equal to maxReplicaCount" in so.message, so
    assert not route.accepted and "must be an absolute path and start with '/'" in route.message, route
    good = cluster.server_dry_run(local_cluster.name, [_scaled_object(1, 2), _http_route("/v1")], namespace)
    assert [r.accepted for r in good] == [True, True], good


def test_an_unknown_field_is_refused_not_pruned(local_cluster: cluster.ClusterInfo, namespace: str) -> None:
    so = _scaled_object(1, 2)
    so["spec"]["maxReplicas"] = 4  # the HPA spelling, not KEDA's
    (result,) = cluster.server_dry_run(local_cluster.name, [so], namespace)
    assert not result.accepted and "maxReplicas" in result.message, result


@pytest.mark.parametrize("env", ENV_FILES, ids=[e.stem for e in ENV_FILES])
def test_every_object_of_each_environment_passes_the_servers_dry_run(
    env: Path, local_cluster: cluster.ClusterInfo, namespace: str
) -> None:
    manifests = render.render(UMBRELLA, [env, *TEST_OVERLAYS], helm="helm3", release="dry", namespace=namespace)
    results = cluster.server_dry_run(local_cluster.name, manifests, namespace)
    assert len(results) == len(manifests) > 0
    assert any(m.kind in ("ScaledObject", "HorizontalPodAutoscaler", "ServiceMonitor", "HTTPRoute", "PrometheusRule")
               for m in manifests) or env.stem == "local-vllm", f"{env.name}: no custom resource went to the server"
    refused = [f"{r.kind}/{r.name}: {r.message}" for r in results if not r.accepted]
    assert not refused, "\n".join(refused)
    warned = [f"{r.kind}/{r.name}: {r.message}" for r in results if r.message]
    assert not warned, "\n".join(warned)


def test_a_workload_template_breaking_pod_security_comes_back_as_a_warning(
    local_cluster: cluster.ClusterInfo, namespace: str
) -> None:
    labels = {"app": "privileged"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "privileged"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "c", "image": "registry.example/app:1", "securityContext": {"privileged": True}}]}}},
    }
    (result,) = cluster.server_dry_run(local_cluster.name, [deployment], namespace)
    # The namespace enforces "restricted" on pods; for a Deployment the server warns, and the environment test fails on warnings.
    assert result.accepted and "PodSecurity" in result.message and "privileged" in result.message, result
