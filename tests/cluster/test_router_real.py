"""The router on the real node: values/local.yaml with two simulator models
behind the chart's vLLM Router, reached from the host through the router's
own Service (kube-proxy), as a client in the cluster would reach it.

What is checked is what the router does with real pods it discovered itself
(Kubernetes discovery, IGW mode): each request reaches only its model's pods
(counted by each pod's own vllm:request_success_total), ``GET /v1/models``
lists the release's models, an unknown model gets an OpenAI-style 404, a LoRA
adapter reaches its base model's pods, and an engine container killed under
steady load costs at most 1% of the requests while the router stops sending
to it within its health-check interval.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from llmops import cluster, paths, poll, tools
from llmops.cluster import node, release
from llmops.engine.router import request

from .conftest import kubectl_json

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("router-real")]

ENV = paths.VALUES_DIR / "local.yaml"
READY_TIMEOUT_S = 120
# The chart's default router.healthCheck.intervalSeconds.
HEALTH_INTERVAL_S = 5
# Two models; alpha has two replicas so one can die under load. Replicas are
# fixed (no KEDA runs here) so each pod's counters are the only ones that move.
TWO_MODELS: dict[str, Any] = {
    "autoscaling": {"enabled": False},
    "vllm": {
        "modelDefaults": {"replicas": 1},
        "models": [
            {"name": "alpha", "servedModelName": "alpha-llm", "replicas": 2,
             "source": "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main"},
            {"name": "beta", "servedModelName": "beta-llm", "source": "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main"},
        ],
    },
}  # fmt: skip
ONE_MODEL_WITH_ADAPTER: dict[str, Any] = {
    "autoscaling": {"enabled": False},
    "vllm": {
        "modelDefaults": {"replicas": 1},
        "models": [
            {"name": "gamma", "servedModelName": "gamma-llm", "source": "hf://HuggingFaceTB/SmolLM2-135M-Instruct@main",
             "loraAdapters": [{"name": "gamma-sql", "source": "hf://example/gamma-sql-lora@main"}]},
        ],
    },
}  # fmt: skip


@dataclass
class Stack:
    info: cluster.ClusterInfo
    namespace: str
    release: str
    router_url: str
    router_metrics_url: str

    def engine_pods(self) -> list[dict[str, Any]]:
        return list(kubectl_json(self.info, "get", "pods", "-n", self.namespace, "-l",
                                 f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component=engine")["items"])

    def pod_ips(self, model: str) -> list[str]:
        return sorted(p["status"]["podIP"] for p in self.engine_pods()
                      if p["metadata"]["labels"].get("llmops.io/model") == model and p["status"].get("podIP"))

    def workers(self) -> list[dict[str, Any]]:
        status, body = request(f"{self.router_url}/workers", timeout=5)
        if status != 200 or not isinstance(body, dict):
            raise RuntimeError(f"GET /workers on the router: HTTP {status} {body!r}")
        return list(body["workers"])


def _install(info: cluster.ClusterInfo, name: str, values: dict[str, Any], models: int) -> Iterator[Stack]:
    if not cluster.has_real_node(info.name):
        pytest.fail(f"cluster {info.name} has no real node (LLMOPS_REAL_NODES=0?); this tier needs one")
    namespace = f"rt-{uuid.uuid4().hex[:8]}"
    release.ensure_namespace(namespace, cluster_name=info.name, real_node=True)
    rel = release.Release(name, namespace, "helm3", info.name, real_node=True)
    try:
        rel.install(paths.CHARTS_DIR / "llmops-stack", [ENV], set_values=values, timeout="3m", create_namespace=False)
        svc = kubectl_json(info, "get", "service", "-n", namespace, f"{name}-router")
        ip = svc["spec"]["clusterIP"]
        ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
        stack = Stack(info, namespace, name, f"http://{ip}:{ports['http']}", f"http://{ip}:{ports['metrics']}/metrics")
        pods = len(stack.engine_pods())
        # Discovery registers a pod once it is Ready; wait for every engine pod.
        poll.until(f"the router to register all {pods} engine pods of {models} model(s)",
                   lambda: len([w for w in stack.workers() if w["is_healthy"]]) == pods,
                   timeout=READY_TIMEOUT_S, retry_on=(OSError,), describe=stack.workers, error=RuntimeError)
        yield stack
    finally:
        cluster.kubectl(info.name, "delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def two_models(local_cluster: cluster.ClusterInfo) -> Iterator[Stack]:
    yield from _install(local_cluster, "rtr", TWO_MODELS, 2)


def _chat(url: str, model: str, *, timeout: float = 10, max_tokens: int = 4, text: str = "hello") -> tuple[int, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
    return request(f"{url}/v1/chat/completions", body, timeout=timeout)


def _served(pod_ip: str) -> float:
    """The pod's own count of successful requests (every model_name and finish_reason)."""
    status, text = request(f"http://{pod_ip}:8000/metrics", timeout=5)
    assert status == 200, (pod_ip, status)
    return sum(float(m.group(1)) for m in re.finditer(r"^vllm:request_success_total\{[^}]*\} (\S+)$", str(text), re.M))


def test_each_request_reaches_only_the_pods_of_the_model_it_names(two_models: Stack) -> None:
    alpha, beta = two_models.pod_ips("alpha"), two_models.pod_ips("beta")
    assert len(alpha) == 2 and len(beta) == 1
    before = {ip: _served(ip) for ip in alpha + beta}
    for i in range(20):
        status, body = _chat(two_models.router_url, "alpha-llm", text=f"alpha question {i}")
        assert status == 200 and body["model"] == "alpha-llm", (status, body)
    for i in range(7):
        status, body = _chat(two_models.router_url, "beta-llm", text=f"beta question {i}")
        assert status == 200 and body["model"] == "beta-llm", (status, body)
    delta = {ip: _served(ip) - before[ip] for ip in alpha + beta}
    assert sum(delta[ip] for ip in alpha) == 20, delta
    assert delta[beta[0]] == 7, delta


def test_models_through_the_router_lists_every_model_of_the_release(two_models: Stack) -> None:
    status, body = request(f"{two_models.router_url}/v1/models", timeout=5)
    # vllm-router 0.1.17 in IGW mode answers {"models": [...]}, not OpenAI's
    # {"object": "list", "data": [...]}, and has no option for the latter.
    assert status == 200 and isinstance(body, dict), (status, body)
    assert sorted(body["models"]) == ["alpha-llm", "beta-llm"]


def test_an_unknown_model_gets_a_json_404_and_no_pod_answers_it(two_models: Stack) -> None:
    ips = two_models.pod_ips("alpha") + two_models.pod_ips("beta")
    before = sum(_served(ip) for ip in ips)
    for _ in range(3):
        status, body = _chat(two_models.router_url, "llama-9000")
        assert status == 404, (status, body)
        assert isinstance(body, dict) and body["error"]["code"] == 404 and "llama-9000" in body["error"]["message"], body
    assert sum(_served(ip) for ip in ips) == before


@pytest.fixture(scope="module")
def adapter_stack(local_cluster: cluster.ClusterInfo) -> Iterator[Stack]:
    yield from _install(local_cluster, "rtl", ONE_MODEL_WITH_ADAPTER, 1)


def test_a_lora_adapter_is_answered_by_its_base_models_pods(adapter_stack: Stack) -> None:
    (ip,) = adapter_stack.pod_ips("gamma")
    before = _served(ip)
    for i in range(5):
        status, body = _chat(adapter_stack.router_url, "gamma-sql", text=f"sql {i}")
        assert status == 200 and body["model"] == "gamma-sql", (status, body)
    assert _served(ip) - before == 5


# ---------------------------------------------------------------------------
# An engine container killed under steady load
# ---------------------------------------------------------------------------
CLIENTS = 6
LOAD_S = 24.0
KILL_AT_S = 6.0
MAX_ERROR_RATIO = 0.01


def _router_series(url: str, name: str) -> dict[str, float]:
    """worker URL -> value of the router's NAME series (summed over its other labels)."""
    status, text = request(url, timeout=5)
    assert status == 200, status
    out: dict[str, float] = {}
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", str(text), re.M):
        worker = re.search(r'worker="([^"]+)"', m.group(1))
        if worker:
            out[worker.group(1)] = out.get(worker.group(1), 0.0) + float(m.group(2))
    return out


def _router_outcomes(url: str, outcome: str) -> dict[str, float]:
    status, text = request(url, timeout=5)
    assert status == 200, status
    out: dict[str, float] = {}
    for m in re.finditer(r'^vllm_router_cb_outcomes_total\{worker="([^"]+)",outcome="([^"]+)"\} (\S+)$', str(text), re.M):
        if m.group(2) == outcome:
            out[m.group(1)] = float(m.group(3))
    return out


def _kill_container(info: cluster.ClusterInfo, pod: dict[str, Any]) -> None:
    """SIGKILL the engine container's process through the node's containerd (the pod object stays)."""
    spec = node.NodeSpec.load(cluster.cluster_dir(info.name) / "node")
    assert spec is not None
    (status,) = pod["status"]["containerStatuses"]
    cid = status["containerID"].removeprefix("containerd://")
    subprocess.run([str(tools.require("ctr")), "--address", str(spec.containerd_socket), "-n", "k8s.io",
                    "tasks", "kill", "--signal", "SIGKILL", cid], check=True, capture_output=True, timeout=30)


def _delete_pod(info: cluster.ClusterInfo, pod: dict[str, Any]) -> None:
    """Force-delete the pod object (no grace): the kubelet kills its container, discovery sees the deletion."""
    cluster.kubectl(info.name, "delete", "pod", "-n", pod["metadata"]["namespace"], pod["metadata"]["name"],
                    "--grace-period=0", "--force", "--wait=false")


@pytest.mark.parametrize("kill", ["container", "pod"])
def test_a_killed_engine_costs_at_most_one_percent_and_the_router_stops_sending_to_it(two_models: Stack, kill: str) -> None:
    alpha = [p for p in two_models.engine_pods()
             if p["metadata"]["labels"].get("llmops.io/model") == "alpha" and not p["metadata"].get("deletionTimestamp")]
    assert len(alpha) == 2
    # A replaced pod must be registered again before the next load starts.
    poll.until("both alpha pods registered and healthy in the router", lambda: {
        f"http://{p['status']['podIP']}:8000" for p in alpha} <= {w["url"] for w in two_models.workers() if w["is_healthy"]},
        timeout=READY_TIMEOUT_S, describe=two_models.workers, error=RuntimeError)
    results: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + LOAD_S

    def client(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            try:
                status, _ = _chat(two_models.router_url, "alpha-llm", text=f"client {n} request {i}", timeout=15)
            except OSError:
                status = 0
            i += 1
            with lock:
                results.append(status)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    sent_at_start = _router_series(two_models.router_metrics_url, "vllm_router_processed_requests_total")
    time.sleep(KILL_AT_S)
    # Kill the replica that is serving (cache_aware keeps similar prompts on one).
    sent = _router_series(two_models.router_metrics_url, "vllm_router_processed_requests_total")
    victim = max(alpha, key=lambda p: sent.get(f"http://{p['status']['podIP']}:8000", 0.0)
                 - sent_at_start.get(f"http://{p['status']['podIP']}:8000", 0.0))
    dead = f"http://{victim['status']['podIP']}:8000"
    assert sent.get(dead, 0.0) - sent_at_start.get(dead, 0.0) > 0, "no alpha pod got traffic before the kill"
    (survivor,) = [p["status"]["podIP"] for p in alpha if p is not victim]
    survivor_before = _served(survivor)
    # The router's own count of failed attempts on the dead worker, sampled
    # from before the kill: the last time it grows is the last time the router
    # sent the dead engine a request. Sent attempts that succeed after the
    # kill are impossible (the process is gone) until the kubelet restarts it.
    failures = failures_before = _router_outcomes(two_models.router_metrics_url, "failure").get(dead, 0.0)
    (_kill_container if kill == "container" else _delete_pod)(two_models.info, victim)
    killed_at = time.monotonic()
    last_failure_at, removed_at = killed_at, None
    while time.monotonic() < stop:
        now = _router_outcomes(two_models.router_metrics_url, "failure").get(dead, 0.0)
        if now > failures:
            failures, last_failure_at = now, time.monotonic()
        if removed_at is None and not any(w["url"] == dead and w["is_healthy"] for w in two_models.workers()):
            removed_at = time.monotonic()
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=30)
    errors = sum(1 for s in results if s != 200)
    ratio = errors / max(len(results), 1)
    removed = f"{removed_at - killed_at:.2f}s" if removed_at else "never"
    print(f"[{kill}] requests {len(results)}, errors {errors} ({ratio:.2%}); router attempts that failed on the dead "
          f"engine {failures - failures_before:.0f}, last {last_failure_at - killed_at:.2f}s after the kill; out of the router's "
          f"healthy workers after {removed}")
    assert _served(survivor) > survivor_before, "the surviving alpha pod answered nothing after the kill"
    assert len(results) > 200, f"too little load to measure a 1% error ratio: {len(results)} requests"
    assert ratio <= MAX_ERROR_RATIO, f"{errors}/{len(results)} requests failed ({ratio:.2%}) when one replica died"
    assert last_failure_at - killed_at <= HEALTH_INTERVAL_S, (
        f"the router still sent requests to the dead engine {last_failure_at - killed_at:.1f}s after the kill "
        f"(health-check interval {HEALTH_INTERVAL_S}s)")
    if kill == "container":
        # The pod object stays Ready for a while: only the router's own
        # failure handling (retry + circuit breaker) protects the clients.
        assert failures > failures_before, "the router never tried the dead container: the kill did not happen under load"
    else:
        assert removed_at is not None and removed_at - killed_at <= HEALTH_INTERVAL_S, (
            f"discovery kept the deleted pod {dead} for {removed} (health-check interval {HEALTH_INTERVAL_S}s)")
