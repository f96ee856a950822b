"""Autoscaling proven end to end: Locust -> vLLM Router -> simulator pods -> Prometheus -> KEDA -> HPA -> new pods.

Everything is real except the GPUs and the model: the kube-apiserver,
scheduler and controller-manager (HPA controller) of the local cluster, its
real node (containerd + kubelet, fake GPUs from a device plugin), Helm
installing the umbrella chart, the chart's llm-d-inference-sim engine pods
and vLLM Router running as containers there, Prometheus on the host scraping
the pods through the observability chart's ServiceMonitor (Kubernetes
discovery, pod IPs over the node's veth), the KEDA operator and metrics
adapter built from the pinned module. A replica KEDA adds is a real pod, so
it adds real capacity, and the router discovers it by label.

Scale from zero goes through what the chart ships for it: the router sends
the idle model's requests to the KEDA HTTP add-on's interceptor (a pod built
from the pinned module), which holds them until a replica is Ready, and KEDA
activates on the requests it holds, read through the add-on's external
scaler.

Tuning: the chart's defaults (5 s scrape, 2 s polling, one-step scale-up),
except a short scale-in (20 s stabilization, -100 % per 15 s) so the module
finishes in minutes.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmops import cluster, paths
from llmops.autoscale import scenarios
from llmops.autoscale.stack import PROMETHEUS_PORT, AutoscaleStack, ModelSpec, Recorder, StackConfig
from llmops.cluster import node

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autoscale")]

NAMESPACE = "autoscale-e2e"
BURST, IDLE = "burst", "idle"
MAX_REPLICAS = 4
IDLE_MAX_REPLICAS = 2
FALLBACK_REPLICAS = 2
FAST_SCALE_IN = {
    "stabilizationWindowSeconds": 20,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}
# Named timeouts: how long each wait may take before the test fails saying what it waited for.
SCALE_OUT_DECISION_S = 45.0  # the chart's 5 s scrape + the HPA's 15 s sync, with slack for a loaded 2-core machine
SCALE_IN_S = 150.0
FALLBACK_S = 90.0
TO_ZERO_S = 120.0
ACTIVATION_S = 45.0
REPORT_DIR = paths.REPO_ROOT / "reports" / "autoscaling-e2e"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AutoscaleStack]:
    models = [ModelSpec(BURST, "burst-llm"), ModelSpec(IDLE, "idle-llm")]
    overrides = {
        BURST: {"minReplicas": 1, "maxReplicas": MAX_REPLICAS,
                "fallback": {"enabled": True, "failureThreshold": 3, "replicas": FALLBACK_REPLICAS},
                "behavior": {"scaleDown": FAST_SCALE_IN}},
        IDLE: scenarios.scale_to_zero(hold_timeout="3m", maxReplicas=IDLE_MAX_REPLICAS, cooldownPeriod=20,
                                      initialCooldownPeriod=0, behavior={"scaleDown": FAST_SCALE_IN}),
    }  # fmt: skip
    values = scenarios.umbrella_values(NAMESPACE, models, overrides, prometheus_url=f"http://127.0.0.1:{PROMETHEUS_PORT}")
    # One fake GPU per engine pod at every model's maximum; IDLE idles at zero behind the add-on's interceptor.
    cfg = StackConfig(models, values, tmp_path_factory.mktemp("autoscale"), namespace=NAMESPACE,
                      node_gpus=MAX_REPLICAS + IDLE_MAX_REPLICAS, node_gpu_product=scenarios.GPU_PRODUCT)
    with AutoscaleStack(cfg, progress=lambda m: print(f"[autoscale] {m}", flush=True)) as st:
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        yield st
        (REPORT_DIR / "stack-timings.json").write_text(json.dumps(st.timings, indent=2))


def _desired(stack: AutoscaleStack, model: str) -> int:
    return stack.deployment(model)[0]


def _condition(obj: dict, kind: str) -> str:
    return next((c.get("status", "") for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), "")


def test_scaledobject_is_ready_and_its_queue_query_reads_the_scraped_engines(stack: AutoscaleStack) -> None:
    so = stack.wait_for("ScaledObject burst Ready", 60, lambda: _condition(stack.scaled_object(BURST), "Ready") == "True")
    assert so
    # the ScaledObject's own PromQL, against series labelled by the chart's ServiceMonitor
    query = next(t["metadata"]["query"] for t in stack.scaled_object(BURST)["spec"]["triggers"] if t["name"] == "queue")
    assert stack.wait_for(f"{query} to return a value", 30, lambda: stack.prometheus.query(query) is not None) is not None
    assert stack.monitor_source.startswith("ServiceMonitor/") and stack.monitor_source.endswith("from the release")
    # Found by Kubernetes discovery and scraped at the pod's own address on the real node (its pod range).
    spec = node.NodeSpec.load(cluster.cluster_dir(stack.cfg.cluster_name) / "node")
    assert spec is not None
    pods = {p["metadata"]["name"]: p["status"]["podIP"] for p in stack.pods(BURST)}
    targets = [t for t in stack.prometheus.active_targets() if t["labels"].get("llmops_model") == BURST]
    assert targets and {t["labels"]["pod"] for t in targets} == set(pods), (targets, pods)
    for t in targets:
        host = t["scrapeUrl"].split("//", 1)[1].split(":", 1)[0]
        assert host == pods[t["labels"]["pod"]] and ipaddress.ip_address(host) in ipaddress.ip_network(spec.pod_cidr), t


def test_spike_scales_out_within_bounds_onto_gpu_nodes_and_back_in_after_cooldown(stack: AutoscaleStack) -> None:
    stack.wait_for("burst at 1 replica before the spike", SCALE_IN_S, lambda: stack.deployment(BURST) == (1, 1))
    out = REPORT_DIR / "spike"
    figures, samples, outcome = scenarios.run_spike(
        stack, BURST, out, base=1, peak=40, at=5, length=50, tail=3, settle_timeout=SCALE_IN_S)
    scenarios.plot(out / "autoscaling.png", [("spike: chart tuning", samples, figures.spike_at, figures.spike_end)],
                   "queue vs desired/ready replicas")  # fmt: skip
    (out / "figures.json").write_text(json.dumps(figures.as_dict(), indent=2))
    # Locust stops the spike's extra clients mid-request when the spike ends (status 0, no HTTP answer);
    # anything the stack answered with an HTTP error would be a real failure.
    errors = outcome.summary["errors_by_status"]
    assert not [k for k in errors if k.isdigit() and k != "0"], errors
    assert outcome.summary["failed"] <= 0.01 * outcome.summary["requests"], errors
    assert figures.peak_queue is not None and figures.peak_queue > 5, "the spike never queued requests"
    assert figures.decision_s is not None and figures.decision_s <= SCALE_OUT_DECISION_S, figures
    assert 1 < figures.max_desired <= MAX_REPLICAS
    assert all(1 <= s.desired <= MAX_REPLICAS for s in samples), "replicas left minReplicas..maxReplicas"
    assert figures.ready_s is not None, "the new replicas never became Ready"
    assert figures.reversals_during_spike == 0, "replicas oscillated during the spike"
    # added replicas added capacity: the router sent to every new pod and the queue shrank from its peak
    peak_serving = max(s.serving for s in samples)
    assert peak_serving == figures.max_desired, "the router never registered every replica KEDA added"
    assert figures.queue_at_end_of_spike is not None and figures.queue_at_end_of_spike < figures.peak_queue
    assert figures.scale_in_s is not None, f"replicas did not come back to 1 within {SCALE_IN_S:.0f}s after the load"


def test_burst_pods_run_on_simulated_gpu_nodes(stack: AutoscaleStack) -> None:
    nodes = stack.node_labels()
    placed = stack.pod_nodes(BURST)
    assert placed
    for pod, name in placed.items():
        # the real node, labelled for the product the engines select (GPU feature discovery's label)
        assert nodes[name].get("nvidia.com/gpu.product") == scenarios.GPU_PRODUCT, (pod, name)
        assert nodes[name].get(node.POOL_LABEL) == node.NODE_LABEL_POOL, (pod, name)


def test_fallback_replicas_hold_while_prometheus_is_down(stack: AutoscaleStack) -> None:
    assert stack.prometheus is not None
    stack.wait_for("burst back at 1 replica", SCALE_IN_S, lambda: _desired(stack, BURST) == 1)
    stack.prometheus.stop()
    try:
        stack.wait_for(f"fallback to {FALLBACK_REPLICAS} replicas", FALLBACK_S,
                       lambda: _desired(stack, BURST) == FALLBACK_REPLICAS)  # fmt: skip
        assert _condition(stack.scaled_object(BURST), "Fallback") == "True"
    finally:
        stack.prometheus.start()
    stack.wait_for("the Fallback condition to clear once Prometheus answers", FALLBACK_S,
                   lambda: _condition(stack.scaled_object(BURST), "Fallback") == "False")  # fmt: skip


def test_scale_from_zero_holds_requests_at_the_add_on_until_a_pod_is_ready_then_returns_to_zero(stack: AutoscaleStack) -> None:
    """Requests for a model at zero replicas are held, not failed, by exactly what the chart ships.

    Locust -> the chart's router Service -> the idle model's hold worker (the
    KEDA HTTP add-on's interceptor, registered by the router pod's registrar)
    -> held while no replica is Ready; KEDA activates the model on the held
    count (external-push trigger, the add-on's scaler); the new pod turns
    Ready, the interceptor forwards the held requests to it, and the router
    discovers the pod. Then back to zero after the cooldown.
    """
    stack.wait_for("idle scaled to zero (no traffic)", TO_ZERO_S, lambda: stack.deployment(IDLE) == (0, 0))
    stack.wait_for("no idle engine pod left in the router", 30, lambda: stack.serving(IDLE) == 0)
    hold = {w["url"]: w for w in stack.router_workers()}.get(stack.hold_url(IDLE))
    assert hold and hold["model_id"] == "idle-llm" and hold["is_healthy"], stack.router_workers()
    rec = Recorder(stack, IDLE).start()
    load = scenarios.LoadRun({"idle-llm": [stack.router_url]}, {"shape": "concurrency", "users": 2, "duration": "25s"},
                             REPORT_DIR / "from-zero" / "locust", profile="default").start()  # fmt: skip
    started = rec.now()
    try:
        stack.wait_for("idle activated from zero", ACTIVATION_S, lambda: _desired(stack, IDLE) >= 1)
        activated = rec.now() - started
        stack.wait_for("idle's first replica Ready", ACTIVATION_S, lambda: stack.deployment(IDLE)[1] >= 1)
        first_ready = rec.now() - started
        outcome = load.join(120)
        stack.wait_for("idle back to zero after the cooldown", TO_ZERO_S, lambda: _desired(stack, IDLE) == 0)
    finally:
        samples = rec.stop()
    (REPORT_DIR / "from-zero").mkdir(parents=True, exist_ok=True)
    held_at_zero = [s for s in samples if s.ready == 0 and s.held >= 1]
    (REPORT_DIR / "from-zero" / "figures.json").write_text(json.dumps(
        {"activation_s": activated, "first_ready_s": first_ready, "held_peak": max(s.held for s in samples)}, indent=2))
    # nothing failed: the requests that arrived at zero replicas waited and were answered
    assert outcome.summary["failed"] == 0, outcome.summary["errors_by_status"]
    assert outcome.summary["completed"] > 0
    assert held_at_zero, "no request was ever held by the interceptor while zero replicas were Ready"
    assert max(s.serving for s in samples) >= 1, "the router never discovered the new pod"
