"""A real Prometheus server on loopback, scraping what a ServiceMonitor selects.

The observability chart renders a ServiceMonitor (prometheus-operator) for
the engine Services; in a cluster the operator turns it into a scrape job
with Kubernetes endpoints discovery. Here Prometheus runs on the host, and
Debian's build (the pinned one) ships without Kubernetes discovery (only
``file_sd`` and friends), so the harness does both parts:

- :class:`KubernetesDiscovery` reads the Services, EndpointSlices and Pods
  of the monitored namespaces from the API server once a second and writes
  a ``file_sd`` file with one target per endpoint address and port, carrying
  the ``__meta_kubernetes_*`` labels Prometheus' ``endpoints`` role would
  give it (:func:`endpoint_targets`, :func:`discovery_labels`);
- :func:`scrape_configs_for_monitor` turns the ServiceMonitor into jobs over
  that file with the operator's relabeling recipe (keep by Service selector
  and port name, then namespace/service/pod/container/endpoint/job) followed
  by the monitor's ``relabelings`` and ``metricRelabelings`` unchanged, so
  series get exactly the labels the ScaledObject's PromQL expects -- and a
  ServiceMonitor that would not select the engines here selects nothing.

The targets are the engine pods' own addresses on the real node, which the
host reaches through the node's veth (``llmops.cluster.node``: the host
routes the pod range there).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import poll, procs, tools
from llmops.errors import LlmopsError
from llmops.loadtest import shapes

READY_TIMEOUT_S = 30.0
DISCOVERY_INTERVAL_S = 1.0
STOP_TIMEOUT_S = 10.0
_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize(name: str) -> str:
    """A Kubernetes label name as Prometheus' Kubernetes discovery spells it in meta labels."""
    return _INVALID.sub("_", name)


def _duration(value: str | None, default: str) -> str:
    return str(value) if value else default


def _relabel(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A prometheus-operator RelabelConfig (camelCase) as Prometheus config (snake_case)."""
    keys = {
        "sourceLabels": "source_labels", "separator": "separator", "targetLabel": "target_label",
        "regex": "regex", "modulus": "modulus", "replacement": "replacement", "action": "action",
    }  # fmt: skip
    out = {keys[k]: v for k, v in raw.items() if k in keys}
    if "action" in out:
        out["action"] = str(out["action"]).lower()
    return out


def _selector_rules(selector: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """keep/drop rules equivalent to a label selector on the discovered object (operator semantics)."""
    rules: list[dict[str, Any]] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        rules.append({"action": "keep", "source_labels": [f"{prefix}_label_{sanitize(key)}",
                      f"{prefix}_labelpresent_{sanitize(key)}"], "regex": f"({re.escape(str(value))});true"})  # fmt: skip
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        label, present = f"{prefix}_label_{sanitize(key)}", f"{prefix}_labelpresent_{sanitize(key)}"
        alt = "|".join(re.escape(str(v)) for v in values)
        if op == "In":
            rules.append({"action": "keep", "source_labels": [label, present], "regex": f"({alt});true"})
        elif op == "NotIn":
            rules.append({"action": "drop", "source_labels": [label, present], "regex": f"({alt});true"})
        elif op == "Exists":
            rules.append({"action": "keep", "source_labels": [present], "regex": "true"})
        elif op == "DoesNotExist":
            rules.append({"action": "drop", "source_labels": [present], "regex": "true"})
    return rules


def scrape_configs_for_monitor(monitor: Mapping[str, Any], sd_file: Path) -> list[dict[str, Any]]:
    """Prometheus scrape jobs for one ServiceMonitor or PodMonitor, fed from SD_FILE (see KubernetesDiscovery)."""
    kind = monitor.get("kind")
    meta, spec = monitor["metadata"], monitor["spec"]
    namespace = meta.get("namespace", "default")
    if kind == "ServiceMonitor":
        endpoints, obj, port_label = spec.get("endpoints") or [], "__meta_kubernetes_service", "__meta_kubernetes_endpoint_port_name"
    elif kind == "PodMonitor":
        endpoints, obj, port_label = spec.get("podMetricsEndpoints") or [], "__meta_kubernetes_pod", "__meta_kubernetes_pod_container_port_name"
    else:
        raise LlmopsError(f"{kind}: only ServiceMonitor and PodMonitor can be turned into scrape jobs")
    ns_sel = spec.get("namespaceSelector") or {}
    namespaces = [] if ns_sel.get("any") else (ns_sel.get("matchNames") or [namespace])
    jobs: list[dict[str, Any]] = []
    for index, ep in enumerate(endpoints):
        relabels: list[dict[str, Any]] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
        if namespaces:
            relabels.append({"action": "keep", "source_labels": ["__meta_kubernetes_namespace"],
                             "regex": "|".join(re.escape(n) for n in namespaces)})  # fmt: skip
        relabels += _selector_rules(spec.get("selector") or {}, obj)
        if ep.get("port"):
            relabels.append({"action": "keep", "source_labels": [port_label], "regex": re.escape(str(ep["port"]))})
        relabels += [
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        ]
        if kind == "ServiceMonitor":
            relabels.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"})
            for label in spec.get("targetLabels") or []:
                relabels.append({"source_labels": [f"__meta_kubernetes_service_label_{sanitize(label)}"],
                                 "target_label": sanitize(label), "regex": "(.+)", "replacement": "${1}"})  # fmt: skip
        for label in spec.get("podTargetLabels") or []:
            relabels.append({"source_labels": [f"__meta_kubernetes_pod_label_{sanitize(label)}"],
                             "target_label": sanitize(label), "regex": "(.+)", "replacement": "${1}"})  # fmt: skip
        job_source = obj + "_name"
        if spec.get("jobLabel"):
            job_source = f"{obj}_label_{sanitize(spec['jobLabel'])}"
        elif kind == "PodMonitor":
            relabels.append({"target_label": "job", "replacement": f"{namespace}/{meta['name']}"})
            job_source = ""
        if job_source:
            relabels.append({"source_labels": [job_source], "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
        if ep.get("port"):
            relabels.append({"target_label": "endpoint", "replacement": str(ep["port"])})
        relabels += [_relabel(r) for r in ep.get("relabelings") or []]
        job: dict[str, Any] = {
            "job_name": f"{'serviceMonitor' if kind == 'ServiceMonitor' else 'podMonitor'}/{namespace}/{meta['name']}/{index}",
            "honor_labels": bool(ep.get("honorLabels", False)),
            "scrape_interval": _duration(ep.get("interval"), "30s"),
            "scrape_timeout": _duration(ep.get("scrapeTimeout"), "10s"),
            "metrics_path": ep.get("path", "/metrics"),
            "scheme": "http",  # the engines serve plain HTTP (no TLS config in the chart's monitor)
            "relabel_configs": relabels,
        }
        job["file_sd_configs"] = [{"files": [str(sd_file)], "refresh_interval": "5s"}]
        if ep.get("metricRelabelings"):
            job["metric_relabel_configs"] = [_relabel(r) for r in ep["metricRelabelings"]]
        jobs.append(job)
    return jobs


def discovery_labels(service: Mapping[str, Any] | None, pod: Mapping[str, Any] | None, container: str, port_name: str,
                     *, ready: bool = True) -> dict[str, str]:  # fmt: skip
    """The ``__meta_kubernetes_*`` labels endpoints discovery gives one address of POD behind SERVICE."""
    flag = "true" if ready else "false"
    labels = {"__meta_kubernetes_endpoint_port_name": port_name, "__meta_kubernetes_endpoint_ready": flag}
    if pod is not None:
        pmeta = pod["metadata"]
        conds = (pod.get("status") or {}).get("conditions") or []
        pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        labels.update({
            "__meta_kubernetes_namespace": pmeta["namespace"],
            "__meta_kubernetes_pod_name": pmeta["name"],
            "__meta_kubernetes_pod_container_name": container,
            "__meta_kubernetes_pod_container_port_name": port_name,
            "__meta_kubernetes_pod_ready": "true" if pod_ready else "false",
            "__meta_kubernetes_pod_node_name": (pod.get("spec") or {}).get("nodeName", ""),
            "__meta_kubernetes_endpoint_address_target_kind": "Pod",
            "__meta_kubernetes_endpoint_address_target_name": pmeta["name"],
        })  # fmt: skip
        for key, value in (pmeta.get("labels") or {}).items():
            labels[f"__meta_kubernetes_pod_label_{sanitize(key)}"] = str(value)
            labels[f"__meta_kubernetes_pod_labelpresent_{sanitize(key)}"] = "true"
    if service is not None:
        smeta = service["metadata"]
        labels["__meta_kubernetes_namespace"] = smeta["namespace"]
        labels["__meta_kubernetes_service_name"] = smeta["name"]
        for key, value in (smeta.get("labels") or {}).items():
            labels[f"__meta_kubernetes_service_label_{sanitize(key)}"] = str(value)
            labels[f"__meta_kubernetes_service_labelpresent_{sanitize(key)}"] = "true"
    return labels


SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # an EndpointSlice's Service


def endpoint_targets(services: Sequence[Mapping[str, Any]], slices: Sequence[Mapping[str, Any]],
                     pods: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, str]]]:  # fmt: skip
    """(address:port, discovery labels) of every endpoint address and port of every Service, as Prometheus' endpoints role sees them.

    Built from the Services' EndpointSlices (what the endpoints controller
    mirrors into Endpoints); not-ready addresses are kept with
    ``__meta_kubernetes_endpoint_ready="false"``, as Prometheus does.
    """
    by_service = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in services}
    by_pod = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    out: list[tuple[str, dict[str, str]]] = []
    for sl in slices:
        meta = sl["metadata"]
        service = by_service.get((meta["namespace"], (meta.get("labels") or {}).get(SERVICE_NAME_LABEL, "")))
        if service is None:
            continue
        for ep in sl.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            pod = by_pod.get((meta["namespace"], ref.get("name", ""))) if ref.get("kind") == "Pod" else None
            ready = (ep.get("conditions") or {}).get("ready") is not False
            for port in sl.get("ports") or []:
                container = _container_for(pod, int(port.get("port", 0)))
                labels = discovery_labels(service, pod, container, str(port.get("name", "")), ready=ready)
                for address in ep.get("addresses") or []:
                    out.append((f"{address}:{port['port']}", labels))
    return sorted(out, key=lambda t: (t[0], sorted(t[1].items())))


def _container_for(pod: Mapping[str, Any] | None, port: int) -> str:
    """The name of POD's container that exposes PORT ("" when none does)."""
    for c in ((pod or {}).get("spec") or {}).get("containers") or []:
        if any(int(p.get("containerPort", 0)) == port for p in c.get("ports") or []):
            return str(c.get("name", ""))
    return ""


@dataclass
class KubernetesDiscovery:
    """Keeps SD_FILE equal to the endpoint targets of NAMESPACES, polled from the API server."""

    api: Any  # kubernetes.client.ApiClient
    namespaces: Sequence[str]
    sd_file: Path
    interval: float = DISCOVERY_INTERVAL_S
    errors: list[str] = field(default_factory=list)
    _last: list[tuple[str, dict[str, str]]] | None = None
    _runner: poll.Repeat | None = None

    def start(self) -> KubernetesDiscovery:
        self.poll_once()
        self._runner = poll.Repeat(self.poll_once, self.interval, "prometheus-k8s-discovery", self.errors).start()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()

    def poll_once(self) -> list[tuple[str, dict[str, str]]]:
        from kubernetes import client  # type: ignore[import-untyped]

        core, disco = client.CoreV1Api(self.api), client.DiscoveryV1Api(self.api)
        services: list[dict[str, Any]] = []
        slices: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        for ns in self.namespaces:
            for out, call in ((services, core.list_namespaced_service), (slices, disco.list_namespaced_endpoint_slice),
                              (pods, core.list_namespaced_pod)):  # fmt: skip
                out.extend(json.loads(call(ns, _preload_content=False).data)["items"])
        targets = endpoint_targets(services, slices, pods)
        if targets != self._last:
            write_sd_file(self.sd_file, targets)
            self._last = targets
        return targets



def write_sd_file(path: Path, groups: Sequence[tuple[str, Mapping[str, str]]]) -> None:
    """Atomically replace a file_sd file with one target group per (address, labels)."""
    data = [{"targets": [address], "labels": dict(labels)} for address, labels in groups]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


@dataclass
class PrometheusServer:
    """``prometheus`` (Debian's build) on 127.0.0.1:``port`` with a generated config."""

    port: int
    workdir: Path
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)
    evaluation_interval: str = "5s"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {"global": {"scrape_interval": "15s", "evaluation_interval": self.evaluation_interval},
                  "scrape_configs": self.scrape_configs}  # fmt: skip
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self) -> PrometheusServer:
        if self.process is not None and self.process.poll() is None:
            return self
        self.write_config()
        log = (self.workdir / "prometheus.log").open("ab")
        try:
            self.process = subprocess.Popen(
                [
                    str(tools.require("prometheus")),
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=2h",
                    "--web.enable-lifecycle",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise LlmopsError(f"prometheus exited before it was ready; log {self.workdir / 'prometheus.log'}:\n{self.log_tail()}")
            return poll.http_ok(f"{self.url}/-/ready")

        poll.until(f"prometheus on {self.url} (/-/ready)", ready, timeout=READY_TIMEOUT_S, interval=0.2)

    def log_tail(self, lines: int = 15) -> str:
        path = self.workdir / "prometheus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def stop(self) -> None:
        procs.stop_process(self.process, STOP_TIMEOUT_S)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def query(self, expr: str, timeout: float = 5.0) -> float | None:
        """Instant query; the sum of the result vector, None for an empty result."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise LlmopsError(f"prometheus query {expr!r} failed: {body}")
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return float(result[1])
        return sum(float(r["value"][1]) for r in result) if result else None

    def active_targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets?state=active", timeout=5) as resp:  # noqa: S310
            return list(json.loads(resp.read())["data"]["activeTargets"])


MODEL_POD_LABEL = "llmops.io/model"


def split_by_model_interval(jobs: Sequence[Mapping[str, Any]], intervals: Mapping[str, str]) -> list[dict[str, Any]]:
    """JOBS with the models named in INTERVALS scraped at their own interval (model -> duration).

    Each job keeps every other model at its own interval and gets one copy per
    distinct interval that keeps only those models (by their pod label
    ``llmops.io/model``), so one release can compare observability tunings
    model by model. The scrape timeout is capped at the new interval.
    """
    if not intervals:
        return [dict(j) for j in jobs]
    source = f"__meta_kubernetes_pod_label_{sanitize(MODEL_POD_LABEL)}"
    by_interval: dict[str, list[str]] = {}
    for model, interval in intervals.items():
        by_interval.setdefault(interval, []).append(model)

    def regex(models: Sequence[str]) -> str:
        return "|".join(re.escape(m) for m in sorted(models))

    out: list[dict[str, Any]] = []
    for job in jobs:
        rest = copy.deepcopy(dict(job))
        rest["relabel_configs"] = [{"action": "drop", "source_labels": [source], "regex": regex(list(intervals))},
                                   *rest["relabel_configs"]]  # fmt: skip
        out.append(rest)
        for interval, models in sorted(by_interval.items()):
            own = copy.deepcopy(dict(job))
            own["job_name"] = f"{job['job_name']}/{'-'.join(sorted(models))}"
            own["scrape_interval"] = interval
            own["scrape_timeout"] = min(str(job.get("scrape_timeout", "10s")), interval, key=shapes.parse_duration)
            own["relabel_configs"] = [{"action": "keep", "source_labels": [source], "regex": regex(models)},
                                      *own["relabel_configs"]]  # fmt: skip
            out.append(own)
    return out
