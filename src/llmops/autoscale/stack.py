"""Everything an autoscaling run needs, started in order and stopped in reverse.

``with AutoscaleStack(config) as stack:`` gives

1. a local cluster (``llmops.cluster``; its own name and port block so the
   cluster-wide APIService never disturbs other tiers' clusters) with the
   KEDA CRDs of the exact KEDA version that runs;
2. the umbrella chart installed with the run's values (real Helm, real
   admission: ScaledObjects, Deployments, Services as users get them);
3. one :class:`~llmops.autoscale.gateway.Gateway` per model on loopback;
4. Prometheus scraping the engines through the chart's ServiceMonitor (or an
   equivalent one when the observability chart renders none) and the gateway;
5. the replica reconciler (one simulator per Ready pod);
6. the KEDA operator and metrics adapter on the host, registered as the
   cluster's external metrics API.

Ports (this area's range, 18200-18299): gateways 18200-18209, Prometheus
18210, KEDA adapter 18211 (+ its metrics 18212), operator gRPC 18213,
operator metrics/health 18214/18215, simulators 18220-18299.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config as kconfig  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

from llmops import cluster, paths, poll
from llmops.cluster import endpoints, release
from llmops.validate import render
from llmops.autoscale import keda
from llmops.autoscale import prometheus as prom
from llmops.autoscale.gateway import Gateway
from llmops.autoscale.replicas import ModelTarget, ReplicaReconciler
from llmops.errors import LlmopsError
from llmops.loadtest import shapes

CLUSTER_NAME = os.environ.get("LLMOPS_AUTOSCALE_CLUSTER", "llmops-autoscale")
# The cluster area's last port block; `llmops.cluster` owns 16000-16099 and hands out blocks of 10.
CLUSTER_PORT_BASE = int(os.environ.get("LLMOPS_AUTOSCALE_CLUSTER_PORT_BASE", "16090"))
GATEWAY_PORTS = range(18200, 18210)
PROMETHEUS_PORT = 18210
KEDA_PORTS = keda.KedaPorts(adapter=18211, adapter_metrics=18212, grpc=18213, operator_metrics=18214, operator_health=18215)
SIMULATOR_PORTS = range(18220, 18300)
MONITOR_KINDS = ("ServiceMonitor", "PodMonitor")
LOCK_TIMEOUT_S = 1800.0
GATEWAY_METRIC = "llmops_gateway_requests_in_flight"
GATEWAY_REQUESTS = "llmops_gateway_requests_total"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the run: its ``vllm.models[].name``, API name and per-replica concurrency.

    The simulators run with the engine args the chart renders into the pods
    (see :func:`llmops.autoscale.replicas.pod_sim_config`); these fields are
    what :func:`llmops.autoscale.scenarios.umbrella_values` puts into the values.
    """

    name: str
    served_name: str
    max_num_seqs: int = 4

    def sim_config(self) -> endpoints.SimulatorConfig:
        return endpoints.SimulatorConfig(model=self.served_name, max_num_seqs=self.max_num_seqs)


@dataclass
class StackConfig:
    models: Sequence[ModelSpec]
    values: Mapping[str, Any]  # umbrella values of the run (vllm.models, autoscaling.models, ...)
    workdir: Path
    namespace: str = "autoscale-e2e"
    release: str = "as"
    chart: Path = paths.CHARTS_DIR / "llmops-stack"
    helm_bin: str = "helm3"
    cluster_name: str = CLUSTER_NAME
    cluster_port_base: int = CLUSTER_PORT_BASE
    # per-model scrape interval (model -> duration) for the engines and the model's gateway, e.g. to
    # compare an observability tuning against another in one release; other models keep the monitor's
    scrape_intervals: Mapping[str, str] = field(default_factory=dict)
    pools: Sequence[cluster.NodePool] = cluster.DEFAULT_POOLS  # simulated nodes (a cluster we start)
    keep_cluster: bool = False  # leave a cluster we started running (for debugging)


def demand_query(namespace: str, model: str) -> str:
    """The model's arrivals per second at its gateway (counted on arrival), over the last two scrapes."""
    return f'sum(irate({GATEWAY_REQUESTS}{{namespace="{namespace}",llmops_model="{model}"}}[1m]))'


def activation_query(namespace: str, model: str) -> str:
    """The scale-from-zero series: requests the model's gateway holds or forwards (exists at zero pods)."""
    return f'sum({GATEWAY_METRIC}{{namespace="{namespace}",llmops_model="{model}"}})'


def _seconds(duration: str) -> float:
    return shapes.parse_duration(duration)


class AutoscaleStack:
    def __init__(self, cfg: StackConfig, *, progress: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.say = progress or (lambda _m: None)
        self.timings: dict[str, float] = {}
        self.api: client.ApiClient | None = None
        self.gateways: dict[str, Gateway] = {}
        self.targets: dict[str, ModelTarget] = {}
        self.prometheus: prom.PrometheusServer | None = None
        self.keda: keda.KedaStack | None = None
        self.reconciler: ReplicaReconciler | None = None
        self.manager: endpoints.EndpointManager | None = None
        self.monitor_source = ""
        self._interval = "30s"
        self._started_cluster = False
        self._stack = contextlib.ExitStack()

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> AutoscaleStack:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _timed(self, step: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        self.say(f"{step} ...")
        out = fn()
        self.timings[step] = round(time.monotonic() - started, 2)
        return out

    def _lock(self) -> None:
        """One stack per machine: the ports and the cluster name are fixed (e.g. the e2e tier vs the benchmark)."""
        lock_dir = paths.cache_root() / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        fh = (lock_dir / "autoscale-stack.lock").open("w")
        self._stack.callback(fh.close)
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LlmopsError(f"another autoscaling stack (e2e tier or scripts/bench_autoscaling.py) held "
                                      f"{fh.name} for {LOCK_TIMEOUT_S:.0f}s; wait for it or stop it") from None  # fmt: skip
                time.sleep(1)

    def _start(self) -> None:
        cfg = self.cfg
        self._timed("lock", self._lock)
        if cfg.workdir.exists():
            shutil.rmtree(cfg.workdir)
        cfg.workdir.mkdir(parents=True)
        self._started_cluster = not cluster.api_ready(cfg.cluster_name)
        # All pinned CRDs (the release's ServiceMonitor/PrometheusRule need prometheus-operator's),
        # then KEDA's again from the exact version whose operator runs here.
        self._timed("cluster", lambda: cluster.up(cfg.cluster_name, "local", pools=cfg.pools,
                                                  port_base=cfg.cluster_port_base, install_crds=True,
                                                  progress=self.say,
                                                  # Simulators run on the host here (one per kwok pod).
                                                  real_nodes=0))  # fmt: skip
        if self._started_cluster and not cfg.keep_cluster:
            self._stack.callback(cluster.down, cfg.cluster_name)
        self.api = kconfig.new_client_from_config(str(cluster.kubeconfig_path(cfg.cluster_name)))
        self._stack.callback(self.api.close)
        self._timed("keda-crds", self._apply_keda_crds)
        rel = release.Release(cfg.release, cfg.namespace, cfg.helm_bin, cfg.cluster_name)
        values_file = cfg.workdir / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(cfg.values), sort_keys=False))
        self._timed("helm-install", lambda: rel.install(cfg.chart, [values_file], timeout="2m"))
        self._stack.callback(self._uninstall, rel)
        self.release = rel

        for i, model in enumerate(cfg.models):
            gw = Gateway(model.served_name, GATEWAY_PORTS[i]).start()
            self._stack.callback(gw.stop)
            self.gateways[model.name] = gw
            self.targets[model.name] = self._target(model, gw)

        sd_file = cfg.workdir / "engines-sd.json"
        prom.write_sd_file(sd_file, [])
        monitor = self._monitor()
        endpoints_ = monitor["spec"].get("endpoints") or monitor["spec"].get("podMetricsEndpoints") or [{}]
        self._interval = str(endpoints_[0].get("interval", "30s"))
        scrape = prom.split_by_model_interval(prom.scrape_configs_for_monitor(monitor, sd_file), cfg.scrape_intervals)
        scrape += self._gateway_jobs()
        self.prometheus = prom.PrometheusServer(PROMETHEUS_PORT, cfg.workdir / "prometheus", scrape)
        self._timed("prometheus", self.prometheus.start)
        self._stack.callback(self.prometheus.stop)

        self.manager = endpoints.EndpointManager(log_dir=cfg.workdir / "sims", ports=SIMULATOR_PORTS)
        self.reconciler = ReplicaReconciler(self.api, list(self.targets.values()), self.manager, sd_file)
        self._timed("reconciler", self.reconciler.start)
        self._stack.callback(self.reconciler.stop)

        self.keda = keda.KedaStack(cluster.kubeconfig_path(cfg.cluster_name), cfg.workdir / "keda", KEDA_PORTS)
        self._timed("keda", lambda: self.keda.start(self.api) if self.keda else None)
        self._stack.callback(self._stop_keda)

    def _apply_keda_crds(self) -> None:
        argv = ["apply", "--server-side", "--force-conflicts", "--field-manager", "llmops-autoscale"]
        for f in keda.crd_documents():
            argv += ["-f", str(f)]
        cluster.kubectl(self.cfg.cluster_name, *argv, timeout=120)
        cluster.kubectl(self.cfg.cluster_name, "wait", "--for", "condition=Established", "crd",
                        "scaledobjects.keda.sh", "cloudeventsources.eventing.keda.sh", "--timeout=60s", timeout=70)  # fmt: skip

    def _uninstall(self, rel: release.Release) -> None:
        with contextlib.suppress(LlmopsError):
            rel.uninstall(wait=False)
        with contextlib.suppress(LlmopsError):
            cluster.kubectl(self.cfg.cluster_name, "delete", "namespace", self.cfg.namespace, "--wait=false")

    def _stop_keda(self) -> None:
        if self.keda is None:
            return
        self.keda.stop()
        if self.api is not None and not self._started_cluster:
            # A reused cluster must not keep an APIService whose server is gone (discovery errors for everyone).
            with contextlib.suppress(ApiException):
                self.keda.unregister(self.api)

    def _target(self, model: ModelSpec, gw: Gateway) -> ModelTarget:
        assert self.api is not None
        name = f"{self.cfg.release}-{model.name}"[:63]
        dep = client.AppsV1Api(self.api).read_namespaced_deployment(name, self.cfg.namespace)
        return ModelTarget(self.cfg.namespace, name, model.name, model.sim_config(), gw,
                           selector=dict(dep.spec.selector.match_labels or {}))  # fmt: skip

    def _monitor(self) -> dict[str, Any]:
        """The ServiceMonitor the release installed; else the one the observability chart renders for it."""
        manifest = release.helm("get", "manifest", self.cfg.release, "--namespace", self.cfg.namespace,
                                helm_bin=self.cfg.helm_bin, cluster_name=self.cfg.cluster_name)  # fmt: skip
        docs = [d for d in yaml.safe_load_all(manifest) if isinstance(d, dict)]
        source = "from the release"
        if not any(d.get("kind") in MONITOR_KINDS for d in docs):
            # The umbrella does not (yet) install the observability subchart with these values:
            # render it for the same release and namespace, exactly as it would be installed.
            docs = [m.obj for m in render.render("observability", [], helm=self.cfg.helm_bin, release=self.cfg.release,
                                                  namespace=self.cfg.namespace, set_values=self._observability_values())]
            source = "rendered from charts/observability for this release"
        for doc in docs:
            # The engines' monitor, not the router's (observability.routerMonitor).
            if doc.get("kind") in MONITOR_KINDS and not doc["metadata"]["name"].endswith("-router"):
                self.monitor_source = f"{doc['kind']}/{doc['metadata']['name']} {source}"
                doc["metadata"].setdefault("namespace", self.cfg.namespace)
                return doc
        raise LlmopsError("neither the release nor charts/observability renders a ServiceMonitor/PodMonitor; "
                          "enable observability.monitor so Prometheus knows what to scrape")  # fmt: skip

    def _observability_values(self) -> dict[str, Any]:
        obs = dict(self.cfg.values.get("observability") or {})
        obs.pop("enabled", None)
        return obs

    def _gateway_jobs(self) -> list[dict[str, Any]]:
        """One static job per scrape interval over the models' gateways (the scale-from-zero series)."""
        groups: dict[str, list[str]] = {}
        for name in self.gateways:
            groups.setdefault(self.cfg.scrape_intervals.get(name, self._interval), []).append(name)
        return [
            {
                "job_name": "llmops-gateway" if interval == self._interval else f"llmops-gateway/{interval}",
                "scrape_interval": interval,
                "scrape_timeout": min("10s", interval, key=_seconds),
                "metrics_path": "/gateway/metrics",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{self.gateways[name].port}"],
                     "labels": {"namespace": self.cfg.namespace, "llmops_model": name}}
                    for name in names
                ],  # fmt: skip
            }
            for interval, names in groups.items()
        ]

    # -- observation -----------------------------------------------------------------
    def deployment(self, model: str) -> tuple[int, int]:
        """(spec.replicas, status.readyReplicas) of the model's Deployment."""
        assert self.api is not None
        dep = client.AppsV1Api(self.api).read_namespaced_deployment(self.targets[model].deployment, self.cfg.namespace)
        return int(dep.spec.replicas or 0), int(dep.status.ready_replicas or 0)

    def hpa(self, model: str) -> dict[str, Any] | None:
        assert self.api is not None
        name = f"keda-hpa-{self.targets[model].deployment}"
        try:
            resp = client.AutoscalingV2Api(self.api).read_namespaced_horizontal_pod_autoscaler(
                name, self.cfg.namespace, _preload_content=False)  # fmt: skip
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data: dict[str, Any] = json.loads(resp.data)
        return data

    def scaled_object(self, model: str) -> dict[str, Any]:
        assert self.api is not None
        obj: dict[str, Any] = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "keda.sh", "v1alpha1", self.cfg.namespace, "scaledobjects", self.targets[model].deployment)
        return obj

    def pod_nodes(self, model: str) -> dict[str, str]:
        """pod name -> node name of the model's running pods."""
        assert self.api is not None
        sel = ",".join(f"{k}={v}" for k, v in sorted(self.targets[model].selector.items()))
        pods = client.CoreV1Api(self.api).list_namespaced_pod(self.cfg.namespace, label_selector=sel).items
        return {p.metadata.name: p.spec.node_name or "" for p in pods if not p.metadata.deletion_timestamp}

    def node_labels(self) -> dict[str, dict[str, str]]:
        assert self.api is not None
        return {n.metadata.name: dict(n.metadata.labels or {}) for n in client.CoreV1Api(self.api).list_node().items}

    def queue(self, model: str) -> float | None:
        """The ScaledObject's own queue query, as KEDA would read it now."""
        assert self.prometheus is not None
        return self.prometheus.query(
            f'sum(vllm:num_requests_waiting{{namespace="{self.cfg.namespace}",llmops_model="{model}"}})')

    def wait_for(self, what: str, timeout: float, probe: Callable[[], Any], interval: float = 0.5) -> Any:
        """Poll PROBE until truthy; on timeout fail naming WHAT and the last state of the run."""
        return poll.until(what, probe, timeout=timeout, interval=interval, describe=self.diagnostics)

    def diagnostics(self) -> str:
        parts = []
        for name in self.targets:
            with contextlib.suppress(Exception):
                hpa = self.hpa(name) or {}
                parts.append(f"{name}: deployment {self.deployment(name)}, hpa status {hpa.get('status', {})}")
        if self.reconciler and self.reconciler.errors:
            parts.append("reconciler errors: " + " | ".join(self.reconciler.errors[-3:]))
        if self.keda:
            for p in self.keda.procs:
                parts.append(f"{p.name} alive={p.alive()} log tail:\n{p.tail(8)}")
        return "\n".join(parts)


@dataclass
class Sample:
    t: float
    model: str
    queue: float | None
    running: float | None
    gateway_in_flight: int
    gateway_pending: int
    desired: int  # Deployment spec.replicas (what KEDA/HPA decided)
    hpa_desired: int | None
    ready: int
    serving: int  # pods with a live simulator

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Recorder:
    """Samples queue length, desired and ready replicas once per ``interval`` in a thread."""

    stack: AutoscaleStack
    model: str
    interval: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Recorder:
        self._thread = threading.Thread(target=self._loop, name="autoscale-recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        return self.samples

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append(self.take())
            self._stop.wait(self.interval)

    def take(self) -> Sample:
        st = self.stack
        ns, m = st.cfg.namespace, self.model
        queue = running = None
        if st.prometheus is not None and st.prometheus.alive():
            with contextlib.suppress(Exception):
                queue = st.queue(m)
                running = st.prometheus.query(f'sum(vllm:num_requests_running{{namespace="{ns}",llmops_model="{m}"}})')
        desired, ready = st.deployment(m)
        hpa = st.hpa(m)
        gw = st.gateways[m].snapshot()
        serving = len(st.reconciler.serving(st.targets[m])) if st.reconciler else 0
        hpa_desired = (hpa or {}).get("status", {}).get("desiredReplicas") if hpa else None
        return Sample(round(self.now(), 2), m, queue, running, gw["in_flight"], gw["pending"], desired,
                      hpa_desired, ready, serving)  # fmt: skip


def write_samples(path: Path, samples: Sequence[Sample]) -> Path:
    path.write_text("".join(json.dumps(s.as_dict()) + "\n" for s in samples))
    return path


def read_samples(path: Path) -> list[Sample]:
    """The samples :func:`write_samples` wrote."""
    return [Sample(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def recording(stack: AutoscaleStack, model: str, interval: float = 1.0) -> Iterator[Recorder]:
    rec = Recorder(stack, model, interval).start()
    try:
        yield rec
    finally:
        rec.stop()
