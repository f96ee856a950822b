"""charts/network-policies: default deny, then one named policy per flow.

Flows are checked with a small evaluator of NetworkPolicy semantics (a pod
selected by any policy of a direction is isolated in that direction; a flow
is allowed when one rule of one selecting policy matches peer and port), so
the tests state flows ("Prometheus may scrape the engines") rather than YAML.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llmops.validate import kubeschema, render
from llmops.validate.render import RenderError

CHART = "network-policies"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))
NS = "llmops"


@dataclass
class Pod:
    labels: dict[str, str]
    namespace: str = NS
    ip: str = "10.244.0.10"
    ports: dict[str, int] = field(default_factory=lambda: {"http": 8000})


ENGINE = Pod({"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "llmops", "app.kubernetes.io/component": "engine", "llmops.io/model": "chat"})
TEST_POD = Pod({"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "llmops", "app.kubernetes.io/component": "test"})
ROUTER = Pod({"app.kubernetes.io/name": "router", "app.kubernetes.io/instance": "llmops", "app.kubernetes.io/component": "router"}, ip="10.244.0.20", ports={"http": 8000, "metrics": 29000})
API_SERVER = "172.18.0.2"
OTHER_RELEASE_ENGINE = Pod({"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "other", "app.kubernetes.io/component": "engine"})
NGINX = Pod({"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx", ip="10.244.1.5")
PROMETHEUS = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring", ip="10.244.2.5")
STRANGER = Pod({"app": "curl"}, namespace="default", ip="10.244.3.5")
DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system", ip="10.96.0.10", ports={"dns": 53})
INTERNET = "104.16.0.1"
PRIVATE = "10.20.1.1"


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    if selector.get("matchExpressions"):
        raise NotImplementedError("the chart renders no matchExpressions")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_matches(peer: dict[str, Any], policy_ns: str, other: Pod | str) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, str):
            return False
        ip = ipaddress.ip_address(other)
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
    if isinstance(other, str):
        return False  # pod/namespace selectors never match an address outside the cluster
    ns_labels = {"kubernetes.io/metadata.name": other.namespace}
    if "namespaceSelector" in peer:
        ns_ok = _selects(peer["namespaceSelector"], ns_labels)
    else:
        ns_ok = other.namespace == policy_ns
    return ns_ok and _selects(peer.get("podSelector"), other.labels)


def _port_matches(ports: list[dict[str, Any]] | None, target: Pod | str, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None or want == port:
            return True
        if isinstance(want, str) and isinstance(target, Pod) and target.ports.get(want) == port:
            return True
    return False


def allowed(policies: list[dict[str, Any]], src: Pod, dst: Pod | str, port: int, protocol: str = "TCP") -> bool:
    """Is src -> dst:port allowed by egress of src's namespace AND ingress of dst's namespace (release namespace only)?"""
    return _direction_ok(policies, "Egress", src, dst, port, protocol) and (
        isinstance(dst, str) or _direction_ok(policies, "Ingress", dst, src, port, protocol)
    )


def _direction_ok(policies: list[dict[str, Any]], direction: str, pod: Pod, peer: Pod | str, port: int, protocol: str) -> bool:
    if pod.namespace != NS:
        return True  # only the release namespace has policies in these tests
    selecting = [p for p in policies if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod.labels)]
    if not selecting:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    target = peer if direction == "Egress" else pod
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, NS, peer) for p in peers)
            if peer_ok and _port_matches(rule.get("ports"), target, port, protocol):
                return True
    return False


def _policies(render_chart: Any, **values: Any) -> list[dict[str, Any]]:
    return render.find(render_chart(CHART, set_values=values or None), "NetworkPolicy")


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_render_valid_kubernetes_objects(render_chart, values: Path) -> None:
    objs = [m.obj for m in render_chart(CHART, [values])]
    assert objs and all(o["kind"] == "NetworkPolicy" for o in objs)
    assert kubeschema.validate_objects(objs) == []


def test_every_policy_is_named_for_its_purpose_and_documented(render_chart) -> None:
    policies = _policies(render_chart)
    names = {p["metadata"]["name"] for p in policies}
    assert names == {
        "llmops-netpol-default-deny",
        "llmops-netpol-allow-dns",
        "llmops-netpol-allow-ingress-controller-to-router",
        "llmops-netpol-allow-router-to-engines",
        "llmops-netpol-allow-router-egress",
        "llmops-netpol-allow-prometheus-to-router",
        "llmops-netpol-allow-prometheus-to-engines",
        "llmops-netpol-allow-helm-test-to-engines",
        "llmops-netpol-allow-helm-test-egress",
        "llmops-netpol-allow-engine-model-download",
        "llmops-netpol-allow-acme-http01-solver",
    }
    assert all(p["metadata"]["annotations"]["llmops.io/purpose"] for p in policies)


def test_default_deny_covers_every_pod_both_ways(render_chart) -> None:
    deny = next(p for p in _policies(render_chart) if p["metadata"]["name"].endswith("default-deny"))
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_only_the_router_prometheus_and_helm_test_reach_the_engines(render_chart) -> None:
    policies = _policies(render_chart)
    assert allowed(policies, ROUTER, ENGINE, 8000)
    assert allowed(policies, PROMETHEUS, ENGINE, 8000)
    assert allowed(policies, TEST_POD, ENGINE, 8000)
    assert not allowed(policies, NGINX, ENGINE, 8000)  # clients go through the router
    assert not allowed(policies, STRANGER, ENGINE, 8000)
    assert not allowed(policies, ROUTER, ENGINE, 9090)  # only the engine's http port
    assert not allowed(policies, OTHER_RELEASE_ENGINE, ENGINE, 8000)


def test_clients_reach_the_router_which_watches_pods_through_the_api_server(render_chart) -> None:
    policies = _policies(render_chart)
    assert allowed(policies, NGINX, ROUTER, 8000)
    assert allowed(policies, PROMETHEUS, ROUTER, 29000)
    assert not allowed(policies, NGINX, ROUTER, 29000)  # metrics are for Prometheus only
    assert not allowed(policies, STRANGER, ROUTER, 8000)
    assert allowed(policies, ROUTER, API_SERVER, 6443) and allowed(policies, ROUTER, API_SERVER, 443)
    assert not allowed(policies, ROUTER, INTERNET, 80)


def test_without_the_router_no_router_policy_is_rendered(render_chart) -> None:
    names = {p["metadata"]["name"] for p in _policies(render_chart, router={"enabled": False})}
    assert not {n for n in names if "router" in n and "ingress-controller" not in n}


def test_engines_resolve_names_and_download_models_from_the_internet_but_not_private_ranges(render_chart) -> None:
    policies = _policies(render_chart)
    assert allowed(policies, ENGINE, DNS, 53, "UDP")
    assert allowed(policies, ENGINE, INTERNET, 443)
    assert not allowed(policies, ENGINE, INTERNET, 80)
    assert not allowed(policies, ENGINE, PRIVATE, 443)
    assert not allowed(policies, ENGINE, "169.254.169.254", 443)  # cloud metadata endpoint


def test_ingress_controller_reaches_acme_solver_pods_only_on_the_solver_port(render_chart) -> None:
    policies = _policies(render_chart)
    solver = Pod({"acme.cert-manager.io/http01-solver": "true"}, ports={"http": 8089})
    assert allowed(policies, NGINX, solver, 8089)
    assert not allowed(policies, STRANGER, solver, 8089)
    assert not allowed(policies, NGINX, ENGINE, 8089)


def test_helm_test_pod_may_only_call_the_engines(render_chart) -> None:
    policies = _policies(render_chart)
    assert allowed(policies, TEST_POD, ENGINE, 8000)
    assert not allowed(policies, TEST_POD, INTERNET, 443)


def test_air_gapped_renders_no_model_download_egress(render_chart) -> None:
    policies = _policies(render_chart, **{"global": {"airGapped": True}})
    assert not any("model-download" in p["metadata"]["name"] for p in policies)
    assert not allowed(policies, ENGINE, INTERNET, 443)
    assert allowed(policies, ENGINE, DNS, 53, "UDP")


def test_private_model_store_cidr_and_port_come_from_values(render_chart) -> None:
    policies = _policies(render_chart, modelDownload={"cidrs": [{"cidr": "10.20.0.0/16"}], "ports": [9000]})
    assert allowed(policies, ENGINE, PRIVATE, 9000)
    assert not allowed(policies, ENGINE, INTERNET, 443)


def test_keda_policy_opens_prometheus_in_this_namespace_to_the_keda_namespace(render_chart) -> None:
    policies = _policies(render_chart, keda={"enabled": True})
    local_prometheus = Pod({"app.kubernetes.io/name": "prometheus"}, ports={"web": 9090})
    keda = Pod({"app": "keda-operator"}, namespace="keda")
    assert allowed(policies, keda, local_prometheus, 9090)
    assert not allowed(policies, STRANGER, local_prometheus, 9090)


def test_disabling_default_deny_leaves_no_isolation_for_unselected_pods(render_chart) -> None:
    policies = _policies(render_chart, defaultDeny=False, helmTest={"enabled": False})
    unrelated = Pod({"app": "other"})
    assert allowed(policies, STRANGER, unrelated, 8080)


def test_model_download_without_cidrs_fails(render_chart) -> None:
    with pytest.raises(RenderError, match=r"networkPolicies.modelDownload.cidrs: empty"):
        render_chart(CHART, set_values={"modelDownload": {"cidrs": []}})


def test_schema_rejects_a_misspelt_flow(render_chart) -> None:
    with pytest.raises(RenderError, match="promethues"):
        render_chart(CHART, set_values={"promethues": {"enabled": False}})
