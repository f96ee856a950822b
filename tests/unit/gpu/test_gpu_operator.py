"""charts/gpu: device-plugin sharing config, ClusterPolicy, RuntimeClass, DCGM ServiceMonitor, PriorityClass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops.validate import crds, kubeschema, render
from llmops.validate.render import RenderError

CHART = "gpu"
CI = sorted((render.chart_path(CHART) / "ci").glob("*-values.yaml"))


def _device_plugin_cm(manifests: list[render.Manifest]) -> dict[str, Any]:
    (cm,) = [c for c in render.find(manifests, "ConfigMap") if c["metadata"]["name"].endswith("-device-plugin")]
    return cm


@pytest.mark.parametrize("values", CI, ids=lambda p: p.name)
def test_ci_values_render_objects_valid_against_crds_and_kubernetes(render_chart, values: Path) -> None:
    objs = [m.obj for m in render_chart(CHART, [values])]
    assert crds.validate_custom_resources(objs) == []
    assert kubeschema.validate_objects(objs) == []


def test_time_slicing_config_advertises_each_gpu_replicas_times(render_chart) -> None:
    cm = _device_plugin_cm(render_chart(CHART))
    assert cm["metadata"]["namespace"] == "gpu-operator"  # the device plugin reads its own namespace
    shared = yaml.safe_load(cm["data"]["shared-4"])
    assert shared["version"] == "v1"
    assert shared["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert shared["sharing"]["timeSlicing"]["failRequestsGreaterThanOne"] is True
    # One replica means no sharing at all, not a sharing block of 1.
    assert "sharing" not in yaml.safe_load(cm["data"]["default"])
    assert yaml.safe_load(cm["data"]["mig-single"])["flags"]["migStrategy"] == "single"


def test_sharing_uses_the_global_gpu_resource_name(render_chart) -> None:
    cm = _device_plugin_cm(render_chart(CHART, set_values={"global": {"gpu": {"resourceName": "nvidia.com/mig-1g.10gb"}}}))
    assert yaml.safe_load(cm["data"]["shared-4"])["sharing"]["timeSlicing"]["resources"][0]["name"] == "nvidia.com/mig-1g.10gb"


def test_cluster_policy_points_the_device_plugin_at_the_sharing_config(render_chart) -> None:
    manifests = render_chart(CHART, set_values={"clusterPolicy": {"create": True}, "devicePlugin": {"defaultConfig": "shared-4"}})
    cp = render.find_one(manifests, "ClusterPolicy")
    cm = _device_plugin_cm(manifests)
    assert cp["spec"]["devicePlugin"]["config"] == {"name": cm["metadata"]["name"], "default": "shared-4"}
    assert cp["spec"]["mig"]["strategy"] == "none"
    assert cp["spec"]["daemonsets"]["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_cluster_policy_is_not_rendered_by_default(render_chart) -> None:
    kinds = {m.kind for m in render_chart(CHART)}
    assert "ClusterPolicy" not in kinds and "RuntimeClass" not in kinds and "Namespace" not in kinds


def test_mig_strategy_without_mig_manager_fails(render_chart) -> None:
    with pytest.raises(RenderError, match=r"gpu.clusterPolicy.migManager: must be true when migStrategy is mixed"):
        render_chart(CHART, set_values={"clusterPolicy": {"create": True, "migStrategy": "mixed"}})


def test_default_config_must_name_a_config(render_chart) -> None:
    with pytest.raises(RenderError, match=r'gpu.devicePlugin.defaultConfig: "shared-8" is not a key'):
        render_chart(CHART, set_values={"devicePlugin": {"defaultConfig": "shared-8"}})


def test_only_the_operator_namespace_is_privileged(render_chart) -> None:
    manifests = render_chart(CHART, set_values={"operatorNamespace": {"create": True, "name": "nvidia-gpu"}})
    ns = render.find_one(manifests, "Namespace")
    assert ns["metadata"]["name"] == "nvidia-gpu"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    # No pod of any kind comes from this chart.
    assert not {m.kind for m in manifests} & {"Pod", "Deployment", "DaemonSet", "StatefulSet", "Job"}


def test_runtime_class_uses_the_toolkit_handler(render_chart) -> None:
    rc = render.find_one(render_chart(CHART, set_values={"runtimeClass": {"create": True}}), "RuntimeClass")
    assert (rc["metadata"]["name"], rc["handler"]) == ("nvidia", "nvidia")


def test_dcgm_service_monitor_keeps_the_gpu_consumer_pod_labels(render_chart) -> None:
    sm = render.find_one(render_chart(CHART, set_values={"global": {"monitoring": {"enabled": True, "prometheusLabels": {"release": "kps"}}}}), "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kps"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["gpu-operator"]}
    assert sm["spec"]["selector"]["matchLabels"] == {"app": "nvidia-dcgm-exporter"}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "gpu-metrics" and endpoint["honorLabels"] is True


def test_dcgm_service_monitor_needs_monitoring_enabled(render_chart) -> None:
    assert not render.find(render_chart(CHART), "ServiceMonitor")


def test_priority_class_for_inference_is_not_the_global_default(render_chart) -> None:
    pc = render.find_one(render_chart(CHART), "PriorityClass")
    assert pc["metadata"]["name"] == "llmops-inference"
    assert pc["globalDefault"] is False
    assert 0 < pc["value"] < 1_000_000_000  # below system-cluster-critical


def test_schema_rejects_unknown_mig_strategy(render_chart) -> None:
    with pytest.raises(RenderError, match="migStrategy"):
        render_chart(CHART, set_values={"devicePlugin": {"configs": {"x": {"migStrategy": "shared"}}}})


def test_dcgm_counters_include_every_gpu_metric_of_the_contract(render_chart) -> None:
    from llmops.validate import metrics_contract

    manifests = render_chart(CHART, set_values={"clusterPolicy": {"create": True}})
    cm = next(c for c in render.find(manifests, "ConfigMap") if "dcgm-metrics.csv" in c["data"])
    fields = {line.split(",")[0].strip() for line in cm["data"]["dcgm-metrics.csv"].splitlines() if line and not line.startswith("#")}
    assert {m.name for m in metrics_contract.by_exporter("dcgm")} <= fields
    assert render.find_one(manifests, "ClusterPolicy")["spec"]["dcgmExporter"] == {"config": {"name": cm["metadata"]["name"]}}
    assert cm["metadata"]["namespace"] == "gpu-operator"
