"""The real node: containers run, probes pass, Services route, helm test runs its real script.

The local cluster's real node (llmops.cluster.node) is a containerd + kubelet node in
a network namespace of its own; a namespace annotated for it
(``release.ensure_namespace(real_node=True)``) sends every pod there. These
tests install values/local.yaml there and check what only running
containers can show.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
import yaml

from llmops import cluster, paths, poll
from llmops.cluster import images, node, release

from .conftest import kubectl_json, kubelet_started, wait_until

ENV = paths.VALUES_DIR / "local.yaml"
READY_TIMEOUT_S = 120


@pytest.fixture
def real_namespace(local_cluster: cluster.ClusterInfo) -> Iterator[str]:
    if not cluster.has_real_node(local_cluster.name):
        pytest.fail(f"cluster {local_cluster.name} has no real node (LLMOPS_REAL_NODES=0?); this tier needs one")
    name = f"r-{uuid.uuid4().hex[:8]}"
    release.ensure_namespace(name, cluster_name=local_cluster.name, real_node=True)
    yield name
    cluster.kubectl(local_cluster.name, "delete", "namespace", name, "--wait=false")


def _real_node(info: cluster.ClusterInfo) -> dict:
    spec = node.NodeSpec.load(cluster.cluster_dir(info.name) / "node")
    assert spec is not None
    return dict(kubectl_json(info, "get", "node", spec.node_name))


def test_real_node_is_a_ready_containerd_node_with_fake_gpus_and_kwok_keeps_its_pools(local_cluster: cluster.ClusterInfo) -> None:
    n = _real_node(local_cluster)
    assert n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert n["status"]["nodeInfo"]["kubeletVersion"] == local_cluster.server_version
    spec = node.NodeSpec.load(cluster.cluster_dir(local_cluster.name) / "node")
    assert spec is not None
    assert n["status"]["allocatable"][cluster.GPU_RESOURCE] == str(spec.gpus)
    assert node.REAL_NODE_TAINT["key"] in {t["key"] for t in n["spec"].get("taints", [])}
    assert "kwok.x-k8s.io/node" not in n["metadata"].get("annotations", {})
    # The kubelet lists images in the node status on its status-update period, not at once.
    def images_on_node() -> set[str]:
        node_now = _real_node(local_cluster)
        return {name for i in node_now["status"].get("images", []) for name in i.get("names", [])}

    listed = poll.until("the real node's status to list the images cluster up imported",
                        lambda: images_on_node() if images.ref("llm-d-inference-sim") in images_on_node() else None,
                        timeout=90, interval=2, describe=images_on_node)
    assert images.ref("llm-d-inference-sim") in listed
    kwok = [x for x in kubectl_json(local_cluster, "get", "nodes")["items"]
            if x["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake"]
    assert {x["metadata"]["labels"][cluster.POOL_LABEL] for x in kwok} >= {"cpu", "gpu-h100", "gpu-l4"}


def _pods(info: cluster.ClusterInfo, namespace: str) -> list[dict]:
    return list(kubectl_json(info, "get", "pods", "-n", namespace)["items"])


def test_local_environment_runs_for_real_helm_test_passes_and_the_service_routes_from_the_host(
    local_cluster: cluster.ClusterInfo, real_namespace: str
) -> None:
    rel = release.Release("real", real_namespace, "helm3", local_cluster.name, real_node=True)
    rel.install(paths.CHARTS_DIR / "llmops-stack", [ENV], timeout="3m", create_namespace=False)
    node_name = _real_node(local_cluster)["metadata"]["name"]
    pods = _pods(local_cluster, real_namespace)
    assert pods and {p["spec"]["nodeName"] for p in pods} == {node_name}
    for p in pods:
        statuses = p["status"]["containerStatuses"]  # the router pod also runs its hold registrar
        assert statuses, p["metadata"]["name"]
        for status in statuses:
            assert status["ready"] and status["started"] and "running" in status["state"], status
            # The kubelet's answer, not kwok's: a container id from containerd.
            assert status["containerID"].startswith("containerd://")

    out = rel.test(timeout="2m", logs=True)
    assert "Phase:          Succeeded" in out, out
    assert kubelet_started(local_cluster, real_namespace, "test-chat"), "the test pod never ran in a container"

    svc = next(s for s in kubectl_json(local_cluster, "get", "services", "-n", real_namespace)["items"]
               if s["metadata"]["labels"].get("app.kubernetes.io/component") == "engine")
    url = f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}/v1/models"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - the cluster's own Service
        assert [m["id"] for m in json.load(resp)["data"]] == ["tiny-llm"]

    # logs and exec go API server -> kubelet on the node address.
    pod = pods[0]["metadata"]["name"]
    assert cluster.kubectl(local_cluster.name, "logs", "-n", real_namespace, pod, "--tail", "50").strip()
    rel.uninstall(timeout="60s")


def test_helm_test_fails_with_the_test_pods_own_message_when_the_engine_does_not_serve_the_model(
    local_cluster: cluster.ClusterInfo, real_namespace: str
) -> None:
    rel = release.Release("broken", real_namespace, "helm4", local_cluster.name, real_node=True)
    # The simulator answers every request "model not found": it serves nothing the test asks for.
    broken = {"vllm": {"simulator": {"extraArgs": ["--failure-injection-rate", "100", "--failure-types", "model_not_found"]}}}
    rel.install(paths.CHARTS_DIR / "llmops-stack", [ENV], set_values=broken, timeout="3m", create_namespace=False)
    with pytest.raises(release.ReleaseError) as err:
        rel.test(timeout="2m", logs=True)
    assert "FAIL tiny-llm status 404" in str(err.value), str(err.value)
    rel.uninstall(timeout="60s", wait=False)


def test_a_gpu_requesting_restricted_pod_runs_on_the_real_node_with_a_device_plugin_gpu(
    local_cluster: cluster.ClusterInfo, real_namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gpu"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "tolerations": [{"key": cluster.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{
                "name": "sim",
                "image": images.ref("llm-d-inference-sim"),
                "args": ["--model", "m", "--port", "8000", "--force-dummy-tokenizer"],
                "resources": {"limits": {cluster.GPU_RESOURCE: "1", "memory": "128Mi"}, "requests": {"cpu": "50m"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True},
                "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 1},
            }],
        },
    }  # fmt: skip
    cluster.kubectl(local_cluster.name, "apply", "-n", real_namespace, "-f", "-", input_text=yaml.safe_dump(pod))
    ready = wait_until("the GPU pod Ready on the real node", READY_TIMEOUT_S, lambda: next(
        (p for p in _pods(local_cluster, real_namespace)
         if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))), None),
        lambda: [p["status"] for p in _pods(local_cluster, real_namespace)])
    assert ready["spec"]["nodeName"] == _real_node(local_cluster)["metadata"]["name"]
