"""Give every Ready engine pod of the local cluster a real process, and route to it.

kwok pods never run containers, so an added replica would add no capacity
and the queue metric would never respond to scaling. The reconciler closes
that loop: it polls the pods of each model Deployment, keeps exactly one
llm-d-inference-sim per Ready pod (started when the pod turns Ready, stopped
when it goes away), points the model's :class:`~llmops.autoscale.gateway.Gateway`
at the live simulators and rewrites Prometheus' file_sd with each
simulator's Kubernetes discovery labels (from the real Pod and Service).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kubernetes import client  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

from llmops.cluster import endpoints
from llmops.autoscale import prometheus
from llmops.autoscale.gateway import Gateway

POLL_INTERVAL_S = 0.25
# A replica that leaves (pod deleted or not Ready) gets no new requests at once but keeps its
# simulator until its in-flight requests finish, like vLLM's --shutdown-timeout drain.
DRAIN_TIMEOUT_S = 30.0


@dataclass
class ModelTarget:
    """One model Deployment and what serves it on the host."""

    namespace: str
    deployment: str
    model: str  # llmops.io/model label value (vllm.models[].name)
    sim: endpoints.SimulatorConfig
    gateway: Gateway
    selector: dict[str, str] = field(default_factory=dict)  # the Deployment's spec.selector.matchLabels
    container: str = "engine"
    port_name: str = "http"

    def __post_init__(self) -> None:
        if not self.selector:
            self.selector = {"app.kubernetes.io/component": "engine", "llmops.io/model": self.model}


@dataclass
class ReplicaReconciler:
    api: client.ApiClient
    targets: Sequence[ModelTarget]
    manager: endpoints.EndpointManager
    sd_file: Path
    interval: float = POLL_INTERVAL_S
    on_change: Callable[[str, list[str]], None] | None = None
    errors: list[str] = field(default_factory=list)
    _pods: dict[tuple[str, str], endpoints.Simulator] = field(default_factory=dict)
    _draining: dict[tuple[str, str], float] = field(default_factory=dict)  # key -> drain deadline
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ReplicaReconciler:
        self.reconcile_once()
        self._thread = threading.Thread(target=self._loop, name="replica-reconciler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            self.manager.stop_all()
            self._pods.clear()

    def serving(self, target: ModelTarget) -> list[str]:
        """Names of the pods that have a live simulator."""
        return sorted(p for (d, p), s in self._pods.items()
                      if d == target.deployment and s.alive() and (d, p) not in self._draining)  # fmt: skip

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reconcile_once()
            except Exception as exc:  # noqa: BLE001 - keep reconciling; surfaced through .errors
                self.errors.append(f"{time.strftime('%H:%M:%S')} {exc}")

    def reconcile_once(self) -> None:
        with self._lock:
            core = client.CoreV1Api(self.api)
            groups: list[tuple[str, dict[str, str]]] = []
            for target in self.targets:
                pods = _ready_pods(core, target)
                service = _service(core, target)
                wanted = {p["metadata"]["name"]: p for p in pods}
                for name in wanted:
                    key = (target.deployment, name)
                    self._draining.pop(key, None)
                    if key in self._pods and not self._pods[key].alive():
                        self.manager.stop(self._pods.pop(key))
                    if key not in self._pods:
                        self._pods[key] = self.manager.start(
                            pod_sim_config(wanted[name], target), group=f"{target.namespace}/{target.deployment}",
                            labels={"namespace": target.namespace, "pod": name, "model_label": target.model},
                        )  # fmt: skip
                live = [(name, self._pods[(target.deployment, name)]) for name in sorted(wanted)]
                target.gateway.set_backends([("127.0.0.1", sim.port) for _, sim in live])
                # Replicas that left: already out of the gateway; stop each once its requests are done.
                now = time.monotonic()
                for key in [k for k in self._pods if k[0] == target.deployment and k[1] not in wanted]:
                    sim = self._pods[key]
                    deadline = self._draining.setdefault(key, now + DRAIN_TIMEOUT_S)
                    if target.gateway.in_flight_on(("127.0.0.1", sim.port)) == 0 or now > deadline:
                        self.manager.stop(self._pods.pop(key))
                        self._draining.pop(key, None)
                for name, sim in live:
                    labels = prometheus.discovery_labels(service, wanted[name], target.container, target.port_name)
                    groups.append((f"127.0.0.1:{sim.port}", labels))
                if self.on_change is not None:
                    self.on_change(target.deployment, sorted(wanted))
            prometheus.write_sd_file(self.sd_file, groups)


def pod_sim_config(pod: dict[str, Any], target: ModelTarget) -> endpoints.SimulatorConfig:
    """The simulator a kwok pod would have run: the engine container's own args (the chart's), our port.

    The chart renders llm-d-inference-sim flags (served name, TTFT, ITL,
    ``--max-num-seqs``...) into the pod; they are appended after the harness
    defaults, and the simulator takes the last value of a repeated flag, so
    the chart's settings win. Only ``--port`` is dropped (each replica gets
    its own loopback port).
    """
    containers = (pod.get("spec") or {}).get("containers") or []
    engine = next((c for c in containers if c.get("name") == target.container), None)
    args = [str(a) for a in (engine or {}).get("args") or []]
    return replace(target.sim, extra_args=tuple(endpoints.without_port(args)))


def _ready_pods(core: client.CoreV1Api, target: ModelTarget) -> list[dict[str, Any]]:
    selector = ",".join(f"{k}={v}" for k, v in sorted(target.selector.items()))
    pods = core.list_namespaced_pod(target.namespace, label_selector=selector, _preload_content=False)
    items: list[dict[str, Any]] = json.loads(pods.data)["items"]
    ready = []
    for pod in items:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conds = (pod.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            ready.append(pod)
    return ready


def _service(core: client.CoreV1Api, target: ModelTarget) -> dict[str, Any] | None:
    try:
        resp = core.read_namespaced_service(target.deployment, target.namespace, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data: dict[str, Any] = json.loads(resp.data)
    return data
