"""Everything an autoscaling run needs, started in order and stopped in reverse.

``with AutoscaleStack(config) as stack:`` gives

1. a local cluster (``llmops.cluster``; its own name and port block so the
   cluster-wide APIService never disturbs other tiers' clusters) with its
   real node (containerd + kubelet, fake GPUs from a device plugin, GPU
   product labels), the KEDA CRDs of the exact KEDA version that runs and
   the HTTP add-on's of its pinned version, and the on-demand images the
   release's pods run (the add-on's interceptor and scaler) imported into the node;
2. the umbrella chart installed with the run's values into a namespace
   pinned to the real node (real Helm, real admission, real pods: the
   simulator engines and the vLLM Router run as containers, so a replica
   KEDA adds is real capacity);
3. the chart's router reached from the host through its Service (kube-proxy
   on the node), the front door for load;
4. for models that scale from zero, the chart's own holding path: the
   router sends their requests to the KEDA HTTP add-on's interceptor (a pod
   on the node, image built from the pinned module), which holds them until
   a replica is Ready, and KEDA activates the model on the requests it holds
   through the add-on's external scaler (dialed at a fixed ClusterIP: KEDA
   runs on the host and cannot resolve cluster DNS). Benchmarks may still
   put a home-made :class:`~llmops.autoscale.gateway.Gateway` in front of a
   model (``gateway_models``) for its arrival counter;
5. Prometheus scraping the engine pods through the chart's ServiceMonitor
   (their endpoints read from the API server into ``file_sd``, relabelled as
   the operator would; pod IPs are reached through the node's veth) and the
   gateways;
6. the KEDA operator and metrics adapter on the host, registered as the
   cluster's external metrics API.

Ports: ``$LLMOPS_AUTOSCALE_PORT_BASE`` (default 18200) + 0-9 gateways, +10
Prometheus, +11 KEDA adapter (+12 its metrics), +13 operator gRPC, +14/+15
operator metrics/health, +16/+17 the unit tests' Prometheus servers. The
cluster: ``$LLMOPS_AUTOSCALE_CLUSTER`` (default llmops-autoscale) on the
port block ``$LLMOPS_AUTOSCALE_CLUSTER_PORT_BASE`` (default 16090), which
also picks its real node's subnets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config as kconfig  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]
from kubernetes.utils.quantity import parse_quantity  # type: ignore[import-untyped]

from llmops import cluster, paths, poll
from llmops.cluster import node, release
from llmops.cluster.images import HTTP_ADD_ON_IMAGE
from llmops.validate import render
from llmops.autoscale import keda
from llmops.autoscale import prometheus as prom
from llmops.autoscale.gateway import Gateway, ReadyPods
from llmops.errors import LlmopsError
from llmops.loadtest import shapes

CLUSTER_NAME = os.environ.get("LLMOPS_AUTOSCALE_CLUSTER", "llmops-autoscale")
# The cluster area's last port block; `llmops.cluster` owns 16000-16099 and hands out blocks of 10.
CLUSTER_PORT_BASE = int(os.environ.get("LLMOPS_AUTOSCALE_CLUSTER_PORT_BASE", "16090"))
PORT_BASE_ENV = "LLMOPS_AUTOSCALE_PORT_BASE"


@dataclass(frozen=True)
class AreaPorts:
    """This area's 100 loopback ports, from one base (two stacks side by side need two bases)."""

    base: int

    def __post_init__(self) -> None:
        if not 1024 <= self.base <= 65535 - 99:
            raise LlmopsError(f"${PORT_BASE_ENV}={self.base}: the autoscaling area needs 100 ports from 1024-65535")

    @property
    def gateways(self) -> range:
        return range(self.base, self.base + 10)

    @property
    def prometheus(self) -> int:
        return self.base + 10

    @property
    def keda(self) -> keda.KedaPorts:
        b = self.base
        return keda.KedaPorts(adapter=b + 11, adapter_metrics=b + 12, grpc=b + 13, operator_metrics=b + 14,
                              operator_health=b + 15)  # fmt: skip

    @property
    def unit_prometheus(self) -> range:
        """Ports the unit tests' own Prometheus servers use (never the stack's)."""
        return range(self.base + 16, self.base + 18)


def _port_base() -> int:
    raw = os.environ.get(PORT_BASE_ENV, "18200")
    try:
        return int(raw)
    except ValueError:
        raise LlmopsError(f"${PORT_BASE_ENV}={raw!r} is not a port number") from None


PORTS = AreaPorts(_port_base())
GATEWAY_PORTS = PORTS.gateways
PROMETHEUS_PORT = PORTS.prometheus
KEDA_PORTS = PORTS.keda
MONITOR_KINDS = ("ServiceMonitor", "PodMonitor")
LOCK_TIMEOUT_S = 1800.0
ROUTER_READY_TIMEOUT_S = 120.0
# The add-on's external scaler gets this host number in the node's Service range (the static band, never
# handed out by the allocator), so the host's KEDA operator can dial it.
SCALER_HOST = 250
HOLD_MARK = "llmops.io/hold-worker"  # charts/router/files/hold_registrar.py labels the workers it adds
GATEWAY_METRIC = "llmops_gateway_requests_in_flight"
GATEWAY_REQUESTS = "llmops_gateway_requests_total"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the run: its ``vllm.models[].name``, API name and per-replica concurrency.

    These fields are what :func:`llmops.autoscale.scenarios.umbrella_values`
    puts into the values; the chart renders them into the simulator pods.
    """

    name: str
    served_name: str
    max_num_seqs: int = 4


@dataclass(frozen=True)
class ModelTarget:
    """One model's Deployment on the cluster: its name and pod selector (spec.selector.matchLabels)."""

    deployment: str
    served_name: str
    selector: dict[str, str]


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
    # Models (vllm.models[].name) whose load goes through a holding gateway instead of the router:
    # the ones that start at zero replicas (the router cannot hold their requests), and any whose
    # trigger reads the gateway's arrival counter (demand_query).
    gateway_models: Sequence[str] = ()
    # The real node: fake GPUs for every engine pod at its maximum, with the product the models select.
    node_gpus: int = 8
    node_gpu_product: str = cluster.H100_PRODUCT
    pools: Sequence[cluster.NodePool] = cluster.DEFAULT_POOLS  # kwok pools of a cluster we start (unused here)
    keep_cluster: bool = False  # leave a cluster we started running (for debugging)
    # On-demand images (llmops.cluster.images) the release's pods run, imported into the real node
    # before the install: the KEDA HTTP add-on's interceptor and scaler.
    images: Sequence[str] = (HTTP_ADD_ON_IMAGE,)


def capacity_problems(docs: Sequence[Mapping[str, Any]], allocatable: Mapping[str, float]) -> list[str]:
    """What DOCS (a release's manifest) request beyond ALLOCATABLE with every ScaledObject at maxReplicaCount."""
    maxima = {str((d["spec"].get("scaleTargetRef") or {}).get("name")): int(d["spec"].get("maxReplicaCount", 100))
              for d in docs if d.get("kind") == "ScaledObject"}  # fmt: skip
    total: dict[str, float] = {}
    for w in cluster.workloads(docs):
        for resource, amount in w.requests.items():
            total[resource] = total.get(resource, 0.0) + amount * maxima.get(w.name, w.replicas)
    return [f"{resource} {need:g} > allocatable {allocatable.get(resource, 0.0):g}"
            for resource, need in sorted(total.items()) if need > allocatable.get(resource, 0.0)]


def demand_query(namespace: str, model: str) -> str:
    """The model's arrivals per second at its gateway (counted on arrival), over the last two scrapes."""
    return f'sum(irate({GATEWAY_REQUESTS}{{namespace="{namespace}",llmops_model="{model}"}}[1m]))'


def activation_query(namespace: str, model: str) -> str:
    """The scale-from-zero series: requests the model's gateway holds or forwards (exists at zero pods)."""
    return f'sum({GATEWAY_METRIC}{{namespace="{namespace}",llmops_model="{model}"}})'


def _seconds(duration: str) -> float:
    return shapes.parse_duration(duration)


def _http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the cluster's own Service
        return json.loads(resp.read())


class AutoscaleStack:
    def __init__(self, cfg: StackConfig, *, progress: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.say = progress or (lambda _m: None)
        self.timings: dict[str, float] = {}
        self.api: client.ApiClient | None = None
        self.gateways: dict[str, Gateway] = {}
        self.followers: dict[str, ReadyPods] = {}
        self.targets: dict[str, ModelTarget] = {}
        self.prometheus: prom.PrometheusServer | None = None
        self.discovery: prom.KubernetesDiscovery | None = None
        self.keda: keda.KedaStack | None = None
        self.router_url = ""
        self.router_metrics_url = ""
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
        """One stack per cache: the cluster name and the ports come from the environment, not per run."""
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
        unknown = sorted(set(cfg.gateway_models) - {m.name for m in cfg.models})
        if unknown:
            raise LlmopsError(f"gateway_models {unknown} are not models of the run ({[m.name for m in cfg.models]})")
        self._timed("lock", self._lock)
        if cfg.workdir.exists():
            shutil.rmtree(cfg.workdir)
        cfg.workdir.mkdir(parents=True)
        self._started_cluster = not cluster.api_ready(cfg.cluster_name)
        # All pinned CRDs (the release's ServiceMonitor/PrometheusRule need prometheus-operator's),
        # then KEDA's again from the exact version whose operator runs here.
        self._timed("cluster", lambda: cluster.up(cfg.cluster_name, "local", pools=cfg.pools,
                                                  port_base=cfg.cluster_port_base, install_crds=True,
                                                  progress=self.say, real_nodes=1, node_gpus=cfg.node_gpus,
                                                  node_gpu_product=cfg.node_gpu_product))  # fmt: skip
        if self._started_cluster and not cfg.keep_cluster:
            self._stack.callback(cluster.down, cfg.cluster_name)
        self._check_real_node()
        self.api = kconfig.new_client_from_config(str(cluster.kubeconfig_path(cfg.cluster_name)))
        self._stack.callback(self.api.close)
        self._timed("keda-crds", self._apply_keda_crds)
        # Images `cluster up` does not import (NODE_IMAGES), before any pod of the release needs them.
        self._timed("images", lambda: cluster.load_images(cfg.cluster_name, list(cfg.images), self.say))
        values = dict(cfg.values)
        if self.held_models():
            values = self._scaler_reachable_from_host(values)
        # The namespace pins every pod of the release to the real node (llmops.cluster.node).
        rel = release.Release(cfg.release, cfg.namespace, cfg.helm_bin, cfg.cluster_name, real_node=True)
        values_file = cfg.workdir / "values.yaml"
        values_file.write_text(yaml.safe_dump(values, sort_keys=False))
        self._timed("helm-install", lambda: rel.install(cfg.chart, [values_file], timeout="3m"))
        self._stack.callback(self._uninstall, rel)
        self.release = rel
        for model in cfg.models:
            self.targets[model.name] = self._target(model)
        self._check_capacity()
        self._timed("router", self._wait_router)

        for i, name in enumerate(cfg.gateway_models):
            target = self.targets[name]
            gw = Gateway(target.served_name, GATEWAY_PORTS[i]).start()
            self._stack.callback(gw.stop)
            self.gateways[name] = gw
            follower = ReadyPods(self.api, cfg.namespace, target.selector, gw).start()
            self._stack.callback(follower.stop)
            self.followers[name] = follower

        monitor = self._monitor()
        endpoints_ = monitor["spec"].get("endpoints") or monitor["spec"].get("podMetricsEndpoints") or [{}]
        self._interval = str(endpoints_[0].get("interval", "30s"))
        sd_file = cfg.workdir / "engines-sd.json"
        self.discovery = prom.KubernetesDiscovery(self.api, self._monitor_namespaces(monitor), sd_file)
        self._timed("discovery", self.discovery.start)
        self._stack.callback(self.discovery.stop)
        jobs = prom.scrape_configs_for_monitor(monitor, sd_file)
        scrape = prom.split_by_model_interval(jobs, cfg.scrape_intervals) + self._gateway_jobs()
        self.prometheus = prom.PrometheusServer(PROMETHEUS_PORT, cfg.workdir / "prometheus", scrape)
        self._timed("prometheus", self.prometheus.start)
        self._stack.callback(self.prometheus.stop)

        self.keda = keda.KedaStack(cluster.kubeconfig_path(cfg.cluster_name), cfg.workdir / "keda", KEDA_PORTS)
        self._timed("keda", lambda: self.keda.start(self.api) if self.keda else None)
        self._stack.callback(self._stop_keda)

    def held_models(self) -> list[str]:
        """Models whose requests the KEDA HTTP add-on holds at zero replicas (minReplicas 0, holder httpAddOn)."""
        auto = self.cfg.values.get("autoscaling") or {}
        defaults = auto.get("defaults") or {}
        held = []
        for name, over in (auto.get("models") or {}).items():
            minimum = over.get("minReplicas", defaults.get("minReplicas", 1))
            holder = (over.get("scaleToZero") or {}).get("holder", (defaults.get("scaleToZero") or {}).get("holder", "httpAddOn"))
            if minimum == 0 and holder == "httpAddOn":
                held.append(name)
        return held

    def _scaler_reachable_from_host(self, values: dict[str, Any]) -> dict[str, Any]:
        """The add-on's scaler Service at a fixed ClusterIP, and KEDA's scalerAddress at that IP."""
        import ipaddress

        spec = node.NodeSpec.load(cluster.cluster_dir(self.cfg.cluster_name) / "node")
        if spec is None:
            raise LlmopsError(f"cluster {self.cfg.cluster_name} has no real node; the HTTP add-on's pods need one")
        ip = str(ipaddress.ip_network(spec.service_cidr)[SCALER_HOST])
        auto = dict(values.get("autoscaling") or {})
        add_on = dict(auto.get("httpAddOn") or {})
        add_on["scaler"] = {**(add_on.get("scaler") or {}), "clusterIP": ip}
        add_on["scalerAddress"] = f"{ip}:9090"
        auto["httpAddOn"] = add_on
        return {**values, "autoscaling": auto}

    def _check_real_node(self) -> None:
        """The engines run on the real node: it must be up with room for every pod at its maximum."""
        cfg = self.cfg
        spec = node.NodeSpec.load(cluster.cluster_dir(cfg.cluster_name) / "node")
        if spec is None or not node.supervisor_alive(spec):
            raise LlmopsError(f"cluster {cfg.cluster_name} has no running real node; the autoscaling engines run there as "
                              f"real pods (`llmops cluster down --name {cfg.cluster_name}` and rerun)")  # fmt: skip
        if spec.gpus < cfg.node_gpus or spec.gpu_product != cfg.node_gpu_product:
            raise LlmopsError(
                f"cluster {cfg.cluster_name}'s real node has {spec.gpus} fake GPUs (product {spec.gpu_product or 'none'}); "
                f"this run needs {cfg.node_gpus} ({cfg.node_gpu_product}): `llmops cluster down --name {cfg.cluster_name}` "
                "and rerun, or start it with `llmops cluster up --node-gpus ... --node-gpu-product ...`")

    def _check_capacity(self) -> None:
        """Fail now, not with Pending pods mid-spike, when the release at every maximum outgrows the real node."""
        manifest = release.helm("get", "manifest", self.cfg.release, "--namespace", self.cfg.namespace,
                                helm_bin=self.cfg.helm_bin, cluster_name=self.cfg.cluster_name)  # fmt: skip
        docs = [d for d in yaml.safe_load_all(manifest) if isinstance(d, dict)]
        problems = capacity_problems(docs, self._node_allocatable())
        if problems:
            raise LlmopsError("the release does not fit the real node at every model's maxReplicas: " + "; ".join(problems)
                              + " (lower maxReplicas, the engines' requests, or start the cluster with more --node-gpus)")

    def _node_allocatable(self) -> dict[str, float]:
        spec = node.NodeSpec.load(cluster.cluster_dir(self.cfg.cluster_name) / "node")
        assert spec is not None and self.api is not None
        alloc = client.CoreV1Api(self.api).read_node(spec.node_name).status.allocatable or {}
        return {k: float(parse_quantity(v)) for k, v in alloc.items()}

    def _apply_keda_crds(self) -> None:
        argv = ["apply", "--server-side", "--force-conflicts", "--field-manager", "llmops-autoscale"]
        for f in [*keda.crd_documents(), *keda.http_add_on_crd_documents()]:
            argv += ["-f", str(f)]
        cluster.kubectl(self.cfg.cluster_name, *argv, timeout=120)
        cluster.kubectl(self.cfg.cluster_name, "wait", "--for", "condition=Established", "crd",
                        "scaledobjects.keda.sh", "cloudeventsources.eventing.keda.sh", "httpscaledobjects.http.keda.sh",
                        "--timeout=60s", timeout=70)  # fmt: skip

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

    def _target(self, model: ModelSpec) -> ModelTarget:
        assert self.api is not None
        name = f"{self.cfg.release}-{model.name}"[:63]
        dep = client.AppsV1Api(self.api).read_namespaced_deployment(name, self.cfg.namespace)
        return ModelTarget(name, model.served_name, dict(dep.spec.selector.match_labels or {}))

    def _wait_router(self) -> None:
        """The chart's router Service, reached from the host (kube-proxy), with every Ready engine pod registered."""
        assert self.api is not None
        name = f"{self.cfg.release}-router"
        svc = client.CoreV1Api(self.api).read_namespaced_service(name, self.cfg.namespace)
        ports = {p.name: p.port for p in svc.spec.ports}
        self.router_url = f"http://{svc.spec.cluster_ip}:{ports['http']}"
        self.router_metrics_url = f"http://{svc.spec.cluster_ip}:{ports['metrics']}/metrics"

        held = {self.hold_url(m) for m in self.held_models()}

        def registered() -> bool:
            ready = sum(self.deployment(m)[1] for m in self.targets)
            workers = self.router_workers()
            healthy = {w["url"] for w in workers if w.get("is_healthy")}
            # engine pods from the router's discovery, hold workers from its registrar (healthy through the add-on)
            return len([w for w in workers if w.get("is_healthy") and w["url"] not in held]) >= ready and held <= healthy

        poll.until(f"the router {name} to register every Ready engine pod", registered, timeout=ROUTER_READY_TIMEOUT_S,
                   interval=0.5, retry_on=(OSError, ValueError), describe=lambda: str(self.router_workers_or_error()))

    def router_workers(self) -> list[dict[str, Any]]:
        """The router's workers (GET /workers): url, model_id, is_healthy, load."""
        return list(_http_json(f"{self.router_url}/workers")["workers"])

    def router_workers_or_error(self) -> Any:
        try:
            return self.router_workers()
        except (OSError, ValueError, KeyError) as exc:
            return f"GET {self.router_url}/workers failed: {exc}"

    def hold_url(self, model: str) -> str:
        """The router's hold worker of MODEL: the interceptor under the model's hold Service (charts/autoscaling)."""
        return f"http://{self.cfg.release}-{model}-hold.{self.cfg.namespace}.svc:8080"

    def held(self, model: str) -> int:
        """Requests the add-on's interceptors hold or forward for MODEL now (their admin /queue counts)."""
        assert self.api is not None
        name = f"{self.cfg.release}-autoscaling-interceptor-admin"
        svc = client.CoreV1Api(self.api).read_namespaced_service(name, self.cfg.namespace)
        counts = _http_json(f"http://{svc.spec.cluster_ip}:9090/queue")
        key = f"{self.cfg.namespace}/{self.targets[model].deployment}"
        return int((counts.get(key) or {}).get("Concurrency", 0))

    def url(self, model: str) -> str:
        """Where load for MODEL goes: its holding gateway, else the chart's router."""
        return self.gateways[model].url if model in self.gateways else self.router_url

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

    def _monitor_namespaces(self, monitor: Mapping[str, Any]) -> list[str]:
        """The namespaces the monitor selects from (any: the release's; Prometheus would watch them all)."""
        sel = monitor["spec"].get("namespaceSelector") or {}
        return list(sel.get("matchNames") or [monitor["metadata"]["namespace"]])

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

    def serving(self, model: str) -> int:
        """How many of MODEL's pods its front door sends requests to now."""
        if model in self.gateways:
            return len(self.gateways[model].backends)
        served = self.targets[model].served_name
        return len([w for w in self.router_workers() if w.get("model_id") == served and w.get("is_healthy")
                    and (w.get("metadata") or {}).get(HOLD_MARK) != "true"])

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

    def pods(self, model: str) -> list[dict[str, Any]]:
        """The model's pods that are not being deleted, as the API returns them."""
        assert self.api is not None
        sel = ",".join(f"{k}={v}" for k, v in sorted(self.targets[model].selector.items()))
        resp = client.CoreV1Api(self.api).list_namespaced_pod(self.cfg.namespace, label_selector=sel,
                                                               _preload_content=False)  # fmt: skip
        return [p for p in json.loads(resp.data)["items"] if not p["metadata"].get("deletionTimestamp")]

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
        if self.discovery and self.discovery.errors:
            parts.append("Prometheus target discovery errors: " + " | ".join(self.discovery.errors[-3:]))
        for name, follower in self.followers.items():
            if follower.errors:
                parts.append(f"{name} gateway's pod discovery errors: " + " | ".join(follower.errors[-3:]))
        if self.router_url:
            parts.append(f"router workers: {self.router_workers_or_error()}")
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
    serving: int  # pods the model's front door sends to (the router's healthy workers, or the gateway's backends)
    held: int = 0  # requests the HTTP add-on's interceptor holds or forwards for the model

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
        gw = st.gateways[m].snapshot() if m in st.gateways else {"in_flight": 0, "pending": 0}
        serving = held = 0  # the router or the interceptor busy for a moment must not cost the whole sample
        with contextlib.suppress(OSError, ValueError, KeyError):
            serving = st.serving(m)
        if m in st.held_models():
            with contextlib.suppress(OSError, ValueError, KeyError, ApiException):
                held = st.held(m)
        hpa_desired = (hpa or {}).get("status", {}).get("desiredReplicas") if hpa else None
        return Sample(round(self.now(), 2), m, queue, running, gw["in_flight"], gw["pending"], desired,
                      hpa_desired, ready, serving, held)  # fmt: skip


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
