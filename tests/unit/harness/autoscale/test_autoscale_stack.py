"""The stack's own checks before a run: area ports from one base, room on the real node at every maximum."""

from __future__ import annotations

from typing import Any

import pytest

from llmops.autoscale.stack import AreaPorts, capacity_problems
from llmops.errors import LlmopsError


def _deployment(name: str, cpu: str, gpus: int, replicas: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": {"spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": cpu, "ephemeral-storage": "6Gi"},
                                    "limits": {"nvidia.com/gpu": gpus} if gpus else {}}}]}}}  # fmt: skip
    if replicas is not None:
        spec["replicas"] = replicas
    return {"kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def _scaled_object(target: str, minimum: int, maximum: int) -> dict[str, Any]:
    return {"kind": "ScaledObject", "metadata": {"name": target},
            "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": minimum, "maxReplicaCount": maximum}}  # fmt: skip


GIB = 1024.0**3
DOCS = [_deployment("as-burst", "100m", 1), _scaled_object("as-burst", 1, 4),
        _deployment("as-idle", "100m", 1), _scaled_object("as-idle", 0, 2), _deployment("as-router", "250m", 0, 1)]  # fmt: skip


def test_capacity_counts_every_scaled_deployment_at_its_maximum_and_the_rest_at_their_replicas() -> None:
    node = {"cpu": 2.0, "nvidia.com/gpu": 6.0, "ephemeral-storage": 250 * GIB, "memory": 8 * GIB}
    assert capacity_problems(DOCS, node) == []
    # 4 + 2 engine pods need 6 GPUs and 0.85 CPU; 5 GPUs are one short
    (gpus,) = capacity_problems(DOCS, {**node, "nvidia.com/gpu": 5.0})
    assert gpus.startswith("nvidia.com/gpu 6 > allocatable 5")
    (disk,) = capacity_problems(DOCS, {**node, "ephemeral-storage": 30 * GIB})
    assert disk.startswith("ephemeral-storage")
    assert capacity_problems(DOCS, {**node, "cpu": 0.8}) == ["cpu 0.85 > allocatable 0.8"]


@pytest.mark.parametrize("base", [80, 65500])
def test_an_area_port_base_without_room_for_its_100_ports_is_refused(base: int) -> None:
    with pytest.raises(LlmopsError, match="LLMOPS_AUTOSCALE_PORT_BASE"):
        AreaPorts(base)


def test_every_area_port_derives_from_the_base() -> None:
    ports = AreaPorts(18400)
    keda = sorted(vars(ports.keda).values())
    used = [*ports.gateways, ports.prometheus, *keda, *ports.unit_prometheus]
    assert len(set(used)) == len(used) and min(used) == 18400 and max(used) < 18500


def test_keda_crds_step_applies_and_waits_for_the_http_add_ons_httpscaledobject_crd(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmops import cluster
    from llmops.autoscale import keda
    from llmops.autoscale.stack import AutoscaleStack, StackConfig

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(cluster, "kubectl", lambda name, *argv, **_kw: calls.append(argv) or "")
    monkeypatch.setattr(keda, "crd_documents", lambda: [tmp_path / "keda.sh_scaledobjects.yaml"])
    AutoscaleStack(StackConfig([], {}, tmp_path))._apply_keda_crds()
    applied, waited = calls
    files = [applied[i + 1] for i, a in enumerate(applied) if a == "-f"]
    assert files[0].endswith("keda.sh_scaledobjects.yaml")
    assert [f.rpartition("/")[2] for f in files[1:]] == ["http.keda.sh_httpscaledobjects.yaml"]
    assert "httpscaledobjects.http.keda.sh" in waited


def test_the_stack_imports_the_http_add_on_image_the_node_does_not_get_at_cluster_up(tmp_path: Any) -> None:
    from llmops import cluster
    from llmops.autoscale.stack import StackConfig
    from llmops.cluster import images

    cfg = StackConfig([], {}, tmp_path)
    assert images.HTTP_ADD_ON_IMAGE in cfg.images
    assert not set(cfg.images) & set(cluster.NODE_IMAGES), "cluster up imports those already"
