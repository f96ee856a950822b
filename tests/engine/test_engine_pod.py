"""The real vLLM engine as the chart's own pod: values/local-vllm.yaml installed on the real node.

Where conftest.vllm_server runs the rendered args on the host, this module
runs the rendered Deployment: the `localhost/llmops/vllm-cpu` image (built
on demand, src/llmops/cluster/images.py) under the chart's pod spec (UID 10001,
read-only root filesystem with the chart's emptyDirs, startup and readiness
probes) in a Pod Security "restricted" namespace on the local cluster's real
node. The tiny generated model reaches it the way the file says weights
arrive: the claim `models`, prepared here out of band as a local
PersistentVolume on the node (hostPath volumes are refused under
"restricted"; a claim is not), mounted read-only by the chart.

Cluster: ``LLMOPS_CLUSTER`` / ``LLMOPS_CLUSTER_PORT_BASE`` as in the cluster
tier (reused if up, else started and stopped by this module).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import cluster, engine, paths, poll
from llmops.cluster import images, node, release

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("vllm-engine")]

LOCAL_VLLM = paths.VALUES_DIR / "local-vllm.yaml"
MODEL = "tiny-llm"  # servedModelName in values/local-vllm.yaml
CLAIM, CLAIM_PATH = "models", "tiny-llama"  # source: pvc://models/tiny-llama in values/local-vllm.yaml
CLUSTER_NAME = os.environ.get("LLMOPS_CLUSTER", cluster.DEFAULT_NAME)
PORT_BASE = int(os.environ.get("LLMOPS_CLUSTER_PORT_BASE", str(cluster.PORT_MIN)))
# Create -> Ready: model load plus torch.compile's C++ kernels into an empty
# /cache emptyDir, on 2 cores shared with the control plane.
READY_TIMEOUT_S = float(os.environ.get("LLMOPS_ENGINE_POD_READY_TIMEOUT", "900"))
REPORT = paths.REPO_ROOT / "reports" / "engine" / "engine-pod.json"


def _kubectl_json(info: cluster.ClusterInfo, *args: str) -> Any:
    return json.loads(cluster.kubectl(info.name, *args, "-o", "json"))


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class EnginePod:
    info: cluster.ClusterInfo
    namespace: str
    rel: release.Release
    pod: dict[str, Any]
    figures: dict[str, float] = field(default_factory=dict)

    def service(self, component: str) -> tuple[str, int]:
        svc = next(s for s in _kubectl_json(self.info, "get", "services", "-n", self.namespace)["items"]
                   if s["metadata"]["labels"].get("app.kubernetes.io/component") == component)
        return svc["spec"]["clusterIP"], int(svc["spec"]["ports"][0]["port"])

    def url(self, component: str, path: str) -> str:
        ip, port = self.service(component)
        return f"http://{ip}:{port}{path}"

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url("engine", "/metrics"), timeout=30) as resp:  # noqa: S310 - own Service
            return str(resp.read().decode())


@pytest.fixture(scope="module")
def engine_cluster() -> Iterator[cluster.ClusterInfo]:
    with cluster.shared(CLUSTER_NAME, "local", progress=lambda m: print(f"[cluster] {m}"), port_base=PORT_BASE) as info:
        if not cluster.has_real_node(info.name):
            pytest.fail(f"cluster {info.name} has no real node (LLMOPS_REAL_NODES=0?); the engine pod needs one")
        yield info


def _model_volume(info: cluster.ClusterInfo, namespace: str, model: Path, root: Path) -> str:
    """The claim `models` with the tiny model under tiny-llama/: a local PV on the real node, pre-bound."""
    (root / CLAIM_PATH).parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model, root / CLAIM_PATH, ignore=shutil.ignore_patterns(".complete"))
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)  # readable by UID 10001, writable by nobody but root
    spec = node.NodeSpec.load(cluster.cluster_dir(info.name) / "node")
    assert spec is not None
    pv = f"{namespace}-{CLAIM}"
    docs = [
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"], "storageClassName": "",
                  "persistentVolumeReclaimPolicy": "Retain", "local": {"path": str(root)},
                  "claimRef": {"namespace": namespace, "name": CLAIM},
                  "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                      {"key": "kubernetes.io/hostname", "operator": "In", "values": [spec.node_name]}]}]}}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": CLAIM, "namespace": namespace},
         "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": pv,
                  "resources": {"requests": {"storage": "1Gi"}}}},
    ]  # fmt: skip
    cluster.kubectl(info.name, "apply", "-f", "-", input_text=yaml.safe_dump_all(docs))
    return pv


def _engine_pods(info: cluster.ClusterInfo, namespace: str) -> list[dict[str, Any]]:
    return list(_kubectl_json(info, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=engine")["items"])


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


@pytest.fixture(scope="module")
def engine_pod(engine_cluster: cluster.ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnginePod]:
    info = engine_cluster
    figures: dict[str, float] = {}
    started = time.monotonic()
    spec = node.NodeSpec.load(cluster.cluster_dir(info.name) / "node")
    assert spec is not None, f"cluster {info.name} has no real node spec"
    ref = images.import_into_node("vllm-cpu", spec, say=lambda m: print(f"[image] {m}"))
    figures["image_build_and_import_s"] = round(time.monotonic() - started, 1)
    assert ref == images.ref("vllm-cpu")
    namespace = f"e-{uuid.uuid4().hex[:8]}"
    release.ensure_namespace(namespace, cluster_name=info.name, real_node=True)
    pv = _model_volume(info, namespace, engine.tiny_model(), tmp_path_factory.mktemp("model-volume"))
    rel = release.Release("eng", namespace, "helm3", info.name, real_node=True)
    try:
        rel.install(paths.CHARTS_DIR / "llmops-stack", [LOCAL_VLLM], wait=False, timeout="5m", create_namespace=False)

        def state() -> str:
            return json.dumps([{"name": p["metadata"]["name"], "status": p["status"]}
                               for p in _engine_pods(info, namespace)], indent=1)[-3000:]

        pod = poll.until("the vLLM engine pod Ready on the real node",
                         lambda: next((p for p in _engine_pods(info, namespace) if _ready(p)), None),
                         timeout=READY_TIMEOUT_S, interval=2, describe=state, error=AssertionError)
        ready_at = next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")
        figures["pod_create_to_ready_s"] = _time(ready_at) - _time(pod["metadata"]["creationTimestamp"])
        rel.wait_ready(timeout_s=300)  # the router too (its startup probe failed once on the loaded machine)
        yield EnginePod(info, namespace, rel, pod, figures)
    finally:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(figures, indent=2, sort_keys=True))
        try:
            rel.uninstall(timeout="3m")
        finally:
            cluster.kubectl(info.name, "delete", "namespace", namespace, "--wait=false")
            cluster.kubectl(info.name, "delete", "pv", pv, "--wait=false")


def _post(url: str, body: dict[str, Any], timeout: float = 120) -> tuple[int, dict[str, Any], float]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the release's own Service
            return resp.status, json.loads(resp.read()), time.monotonic() - started
    except urllib.error.HTTPError as err:
        return err.code, {"error": err.read().decode(errors="replace")[:500]}, time.monotonic() - started


def test_engine_pod_runs_the_charts_own_spec_on_the_real_node_as_uid_10001_with_a_read_only_root(
    engine_pod: EnginePod,
) -> None:
    pod, info = engine_pod.pod, engine_pod.info
    spec = node.NodeSpec.load(cluster.cluster_dir(info.name) / "node")
    assert spec is not None and pod["spec"]["nodeName"] == spec.node_name
    (engine,) = [c for c in pod["spec"]["containers"] if c["name"] == "engine"]
    assert engine["image"] == images.ref("vllm-cpu")
    assert engine["startupProbe"]["httpGet"]["path"] == "/health"
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == "engine"]
    assert status["started"] and status["ready"] and status["containerID"].startswith("containerd://"), status
    assert status["restartCount"] == 0, "the engine restarted: startup budget or memory limit too small"
    labels = _kubectl_json(info, "get", "namespace", engine_pod.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # What the process really is, asked inside the running container.
    probe = ("import os, errno\n"
             "try:\n    open('/opt/venv/probe', 'w')\nexcept OSError as e:\n    ro = e.errno == errno.EROFS\n"
             "else:\n    ro = False\n"
             "open('/cache/probe', 'w').write('x')\n"
             "print(os.getuid(), os.getgid(), ro, sorted(os.listdir('/models/tiny'))[:3])")  # fmt: skip
    out = cluster.kubectl(info.name, "exec", "-n", engine_pod.namespace, pod["metadata"]["name"], "-c", "engine",
                          "--", "python3", "-c", probe).strip()
    uid, gid, read_only, *_ = out.split(" ", 3)
    assert (uid, read_only) == ("10001", "True"), out
    assert "config.json" in out, f"the model claim is not mounted at /models/tiny: {out}"


def test_chat_completion_through_the_routers_service_is_generated_by_the_engine_pod_and_counted_on_its_metrics(
    engine_pod: EnginePod,
) -> None:
    before = engine_pod.metrics()
    url = engine_pod.url("router", "/v1/chat/completions")
    status, body, seconds = _post(url, {"model": MODEL, "max_tokens": 16, "temperature": 0,
                                        "messages": [{"role": "user", "content": "Say hello to the cluster."}]})
    assert status == 200, body
    content = body["choices"][0]["message"]["content"]
    assert isinstance(content, str) and content.strip(), body
    usage = body["usage"]
    assert usage["completion_tokens"] >= 1 and usage["prompt_tokens"] >= 5, usage
    after = engine_pod.metrics()

    def delta(name: str) -> float:
        return engine.metric_total(after, name, model_name=MODEL) - engine.metric_total(before, name, model_name=MODEL)

    # The router forwarded it to this pod: the pod's own counters moved by exactly this request.
    assert delta("vllm:request_success_total") == 1
    assert delta("vllm:generation_tokens_total") == usage["completion_tokens"]
    assert delta("vllm:prompt_tokens_total") == usage["prompt_tokens"]
    engine_pod.figures["first_request_e2e_s"] = round(seconds, 3)

    # First-token latency through the router, streamed.
    req = urllib.request.Request(url, data=json.dumps({
        "model": MODEL, "max_tokens": 16, "stream": True,
        "messages": [{"role": "user", "content": "Say hello again."}]}).encode(),
        headers={"Content-Type": "application/json"})  # fmt: skip
    started, ttft, chunks = time.monotonic(), None, 0
    with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - the release's own Service
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta_text = (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content")
            if delta_text:
                chunks += 1
                ttft = ttft if ttft is not None else time.monotonic() - started
    assert ttft is not None and chunks >= 1, "the streamed answer carried no content"
    engine_pod.figures["ttft_through_router_s"] = round(ttft, 3)


def test_helm_test_passes_with_a_real_chat_completion_against_the_engine_pod(engine_pod: EnginePod) -> None:
    out = engine_pod.rel.test(timeout="5m", logs=True)
    assert "Phase:          Succeeded" in out, out
