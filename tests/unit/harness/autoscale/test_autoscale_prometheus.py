"""ServiceMonitor -> Prometheus scrape jobs: checked by promtool and by a real Prometheus' target discovery."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import tools
from llmops.validate import render
from llmops.autoscale import prometheus as prom
from llmops.autoscale.gateway import Gateway
from llmops.autoscale.stack import PORTS, PROMETHEUS_PORT

# Reserved for these tests inside the autoscaling area's ports ($LLMOPS_AUTOSCALE_PORT_BASE + 16/17).
UNIT_PROMETHEUS_PORT = PORTS.unit_prometheus[0]


def _engine_monitor() -> dict[str, Any]:
    manifests = render.render("observability", [], release="rel", namespace="ns")
    monitors = [m.obj for m in manifests if m.obj.get("kind") == "ServiceMonitor" and not m.name.endswith("-router")]
    assert len(monitors) == 1, "the observability chart should render one engine ServiceMonitor by default"
    return monitors[0]


def _pod(name: str, instance: str, model: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": instance,
              "app.kubernetes.io/component": "engine", "llmops.io/model": model}  # fmt: skip
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}, "spec": {"nodeName": "gpu-0"}}


def _service(name: str, instance: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": instance,
              "app.kubernetes.io/component": "engine"}  # fmt: skip
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}}


def _promtool_check_config(tmp_path: Path, jobs: list[dict[str, Any]]) -> None:
    """promtool accepts a Prometheus config made of JOBS (their file_sd file is tmp_path/sd.json)."""
    prom.write_sd_file(tmp_path / "sd.json", [])
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": jobs}))
    proc = subprocess.run([str(tools.require("promtool")), "check", "config", str(config)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scrape_jobs_from_chart_servicemonitor_pass_promtool_check_config(tmp_path: Path) -> None:
    jobs = prom.scrape_configs_for_monitor(_engine_monitor(), tmp_path / "sd.json")
    _promtool_check_config(tmp_path, jobs)
    assert jobs[0]["scrape_interval"] == _engine_monitor()["spec"]["endpoints"][0]["interval"]


def _slice(service: str, port_name: str, *addresses: tuple[str, str, bool]) -> dict[str, Any]:
    """An EndpointSlice of SERVICE with (ip, pod name, ready) endpoints on port 8000."""
    return {"metadata": {"name": f"{service}-x", "namespace": "ns", "labels": {prom.SERVICE_NAME_LABEL: service}},
            "ports": [{"name": port_name, "port": 8000}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": pod}}
                          for ip, pod, ready in addresses]}  # fmt: skip


def _running(pod: dict[str, Any], port: int = 8000) -> dict[str, Any]:
    pod = dict(pod)
    pod["spec"] = {**pod["spec"], "containers": [{"name": "engine", "ports": [{"name": "http", "containerPort": port}]}]}
    pod["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return pod


def test_endpoint_targets_label_each_address_like_prometheus_endpoints_discovery() -> None:
    pods = [_running(_pod("rel-chat-a", "rel", "chat")), _running(_pod("rel-chat-b", "rel", "chat"))]
    slices = [_slice("rel-chat", "http", ("10.1.0.5", "rel-chat-a", True), ("10.1.0.6", "rel-chat-b", False)),
              _slice("gone", "http", ("10.1.0.9", "rel-chat-a", True))]  # a slice whose Service is gone: no target
    targets = dict(prom.endpoint_targets([_service("rel-chat", "rel")], slices, pods))
    assert sorted(targets) == ["10.1.0.5:8000", "10.1.0.6:8000"]
    a = targets["10.1.0.5:8000"]
    assert a["__meta_kubernetes_service_name"] == "rel-chat" and a["__meta_kubernetes_pod_name"] == "rel-chat-a"
    assert a["__meta_kubernetes_pod_container_name"] == "engine" and a["__meta_kubernetes_endpoint_port_name"] == "http"
    assert a["__meta_kubernetes_pod_label_llmops_io_model"] == "chat"
    assert a["__meta_kubernetes_endpoint_ready"] == "true"
    assert targets["10.1.0.6:8000"]["__meta_kubernetes_endpoint_ready"] == "false"  # kept, as Prometheus keeps it


def test_unit_prometheus_ports_stay_clear_of_the_stacks_own() -> None:
    assert PROMETHEUS_PORT not in PORTS.unit_prometheus
    assert not set(PORTS.unit_prometheus) & ({*PORTS.gateways} | set(vars(PORTS.keda).values()))
    assert PORTS.base <= min(PORTS.gateways) and max(PORTS.unit_prometheus) < PORTS.base + 100


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[prom.PrometheusServer, Path, Gateway]]:
    """Prometheus with the chart's engine job; the targets are a gateway's metrics port (any HTTP server will do)."""
    sd = tmp_path / "sd.json"
    prom.write_sd_file(sd, [])
    monitor = _engine_monitor()
    monitor["spec"]["endpoints"][0]["path"] = "/gateway/metrics"
    jobs = prom.scrape_configs_for_monitor(monitor, sd)
    jobs[0]["scrape_interval"] = jobs[0]["scrape_timeout"] = "1s"
    srv = prom.PrometheusServer(UNIT_PROMETHEUS_PORT, tmp_path / "prom", jobs)
    with Gateway("m", 0) as gw:
        srv.start()
        try:
            yield srv, sd, gw
        finally:
            srv.stop()


@pytest.mark.slow
def test_prometheus_keeps_only_selected_engine_endpoints_and_labels_them_like_the_operator(
    server: tuple[prom.PrometheusServer, Path, Gateway],
) -> None:
    srv, sd, gw = server
    addr = f"127.0.0.1:{gw.port}"
    svc = _service("rel-chat", "rel")
    prom.write_sd_file(sd, [
        (addr, prom.discovery_labels(svc, _pod("rel-chat-abc", "rel", "chat"), "engine", "http")),
        # another release's engine, and a non-metrics port of ours: both must be dropped
        (addr, prom.discovery_labels(_service("other-chat", "other"), _pod("other-chat-x", "other", "chat"), "engine", "http")),
        (addr, prom.discovery_labels(svc, _pod("rel-chat-abc", "rel", "chat"), "engine", "grpc")),
    ])  # fmt: skip
    deadline = time.monotonic() + 20
    targets: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        targets = srv.active_targets()
        if targets and all(t["health"] == "up" for t in targets):
            break
        time.sleep(0.5)
    assert len(targets) == 1, targets
    labels = targets[0]["labels"]
    assert labels["namespace"] == "ns"
    assert labels["pod"] == "rel-chat-abc"
    assert labels["service"] == labels["job"] == "rel-chat"
    assert labels["endpoint"] == "http"
    assert labels["llmops_model"] == "chat"  # what the ScaledObject queries select on
    assert labels["llmops_release"] == "rel"
    value = None
    while value is None and time.monotonic() < deadline:
        value = srv.query('sum(llmops_gateway_backends{namespace="ns",llmops_model="chat"})')
        time.sleep(0.5)
    assert value == 0.0


def test_split_by_model_interval_passes_promtool_and_gives_each_model_one_job(tmp_path: Path) -> None:
    jobs = prom.split_by_model_interval(prom.scrape_configs_for_monitor(_engine_monitor(), tmp_path / "sd.json"),
                                        {"slow-a": "30s", "slow-b": "30s", "fast": "1s"})  # fmt: skip
    _promtool_check_config(tmp_path, jobs)
    assert [(j["scrape_interval"], j["scrape_timeout"]) for j in jobs] == [("5s", "4s"), ("1s", "1s"), ("30s", "4s")]
    assert prom.split_by_model_interval(jobs[:1], {}) == jobs[:1]


@pytest.mark.slow
def test_prometheus_scrapes_each_model_at_its_split_interval(tmp_path: Path) -> None:
    sd = tmp_path / "sd.json"
    prom.write_sd_file(sd, [])
    monitor = _engine_monitor()
    monitor["spec"]["endpoints"][0]["path"] = "/gateway/metrics"
    jobs = prom.split_by_model_interval(prom.scrape_configs_for_monitor(monitor, sd), {"slow": "30s"})
    srv = prom.PrometheusServer(PORTS.unit_prometheus[1], tmp_path / "prom", jobs)
    with Gateway("m", 0) as gw:
        srv.start()
        try:
            addr = f"127.0.0.1:{gw.port}"
            svc = _service("rel", "rel")
            prom.write_sd_file(sd, [(addr, prom.discovery_labels(svc, _pod(f"rel-{m}-0", "rel", m), "engine", "http"))
                                    for m in ("slow", "chat")])  # fmt: skip
            deadline = time.monotonic() + 20
            targets: list[dict[str, Any]] = []
            while len(targets) < 2 and time.monotonic() < deadline:
                targets = srv.active_targets()
                time.sleep(0.5)
        finally:
            srv.stop()
    intervals = {t["labels"]["llmops_model"]: t["scrapeInterval"] for t in targets}
    assert intervals == {"slow": "30s", "chat": "5s"}, targets
