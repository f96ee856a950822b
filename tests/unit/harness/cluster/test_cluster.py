"""Cluster and release helpers that need no running cluster: nodes, stages, ports, helm arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmops import cluster, paths
from llmops.cluster import release
from llmops.validate import render
from llmops.cli import build_parser
from llmops.errors import LlmopsError


def _node(nodes: list[dict], name: str) -> dict:
    return next(n for n in nodes if n["metadata"]["name"] == name)


def test_default_pools_give_four_h100_nodes_with_eight_gpus_each_and_the_gpu_taint() -> None:
    nodes = cluster.node_manifests(cluster.DEFAULT_POOLS, "c1")
    gpu_nodes = [n for n in nodes if n["metadata"]["labels"].get("nvidia.com/gpu.product") == cluster.H100_PRODUCT]
    assert len(gpu_nodes) == 4
    for node in gpu_nodes:
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert {"key": "nvidia.com/gpu", "value": "", "effect": "NoSchedule"} in node["spec"]["taints"]


def test_an_l4_pool_exists_for_staging_with_four_gpus_per_node_and_the_gpu_taint() -> None:
    nodes = cluster.node_manifests(cluster.DEFAULT_POOLS, "c1")
    l4 = [n for n in nodes if n["metadata"]["labels"].get("nvidia.com/gpu.product") == "NVIDIA-L4"]
    assert len(l4) == 2
    assert all(n["status"]["allocatable"]["nvidia.com/gpu"] == "4" for n in l4)
    assert all({"key": "nvidia.com/gpu", "value": "", "effect": "NoSchedule"} in n["spec"]["taints"] for n in l4)


def test_cpu_pool_nodes_have_no_gpu_capacity_and_no_taints() -> None:
    nodes = cluster.node_manifests(cluster.DEFAULT_POOLS, "c1")
    cpu_nodes = [n for n in nodes if n["metadata"]["labels"][cluster.POOL_LABEL] == "cpu"]
    assert cpu_nodes
    for node in cpu_nodes:
        assert "nvidia.com/gpu" not in node["status"]["capacity"]
        assert node["spec"]["taints"] == []


def test_every_node_is_handed_to_kwok_by_annotation_and_named_after_cluster_and_pool() -> None:
    pools = (cluster.NodePool("a", 1), cluster.NodePool("b", 2, gpus=4))
    nodes = cluster.node_manifests(pools, "demo")
    assert [n["metadata"]["name"] for n in nodes] == ["demo-a-0", "demo-b-0", "demo-b-1"]
    assert all(n["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake" for n in nodes)
    assert _node(nodes, "demo-b-1")["status"]["capacity"]["nvidia.com/gpu"] == "4"


@pytest.mark.parametrize("base", [16000, 16010, 16090])
def test_ports_from_a_valid_base_stay_inside_the_reserved_range(base: int) -> None:
    ports = cluster.Ports.from_base(base)
    assert all(16000 <= p <= 16099 for p in ports.all())
    assert len(set(ports.all())) == len(ports.all())


@pytest.mark.parametrize("base", [15990, 16005, 16100, 32000])
def test_ports_from_a_base_outside_the_range_or_block_is_refused(base: int) -> None:
    with pytest.raises(LlmopsError, match="port base"):
        cluster.Ports.from_base(base)


def test_kwokctl_config_carries_only_kwoks_own_stages_and_none_that_completes_helm_test_pods() -> None:
    stages = [d for d in cluster.kwokctl_config(cluster.Ports.from_base(16010), cluster.default_stages())
              if d.get("kind") == "Stage"]
    assert stages
    assert {s["metadata"]["name"] for s in stages} == {s["metadata"]["name"] for s in cluster.default_stages()}
    for stage in stages:
        selector = yaml.safe_dump(stage["spec"].get("selector") or {})
        assert "helm.sh/hook" not in selector, f"Stage {stage['metadata']['name']} selects helm test pods"
    assert not hasattr(cluster, "HELM_TEST_STAGE")


def test_helm_test_on_a_cluster_without_a_real_node_fails_at_once_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path))
    (tmp_path / "clusters" / "kwokonly").mkdir(parents=True)
    (tmp_path / "clusters" / "kwokonly" / "provider").write_text("local")
    called: list[tuple[str, ...]] = []
    monkeypatch.setattr(release, "helm", lambda *a, **_k: called.append(a) or "")
    rel = release.Release("r", "ns", "helm3", "kwokonly")
    with pytest.raises(LlmopsError, match=r"helm test needs a real node.*--real-nodes 1"):
        rel.test()
    assert called == [], "helm must not run: its test pod would wait out the timeout on a kwok node"


def test_default_stages_come_from_the_pinned_kwok_module_and_cover_nodes_and_pods() -> None:
    stages = cluster.default_stages()
    names = {s["metadata"]["name"] for s in stages}
    assert {"node-initialize", "pod-ready", "pod-complete", "pod-delete"} <= names
    assert all(s["kind"] == "Stage" for s in stages)


def test_kubeconfig_lives_in_the_cache_not_in_the_users_home_kube_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path))
    assert cluster.kubeconfig_path("x") == tmp_path / "clusters" / "x" / "kubeconfig"


def test_down_of_a_cluster_that_never_existed_is_a_no_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_CACHE", str(tmp_path))
    assert cluster.down("never") == []
    assert cluster.leftovers("never") == []


def test_psa_labels_enforce_warn_and_audit_restricted() -> None:
    labels = release.psa_labels()
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_set_values_become_typed_set_json_flags_per_leaf() -> None:
    args = release._values_args(["a.yaml"], {"vllm": {"replicas": 2, "strategy": {"type": "Recreate"}}, "x": [1]})
    assert args == [
        "--values", "a.yaml",
        "--set-json", "vllm.replicas=2",
        "--set-json", 'vllm.strategy.type="Recreate"',
        "--set-json", "x=[1]",
    ]


def test_cluster_and_status_subcommands_are_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(["cluster", "up", "--name", "t", "--port-base", "16010"])
    assert (args.name, args.port_base, args.provider) == ("t", 16010, "local")
    args = parser.parse_args(["status", "-n", "serving"])
    assert args.namespace == "serving"


def test_kind_provider_is_refused_with_a_fix_when_no_docker_engine_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "docker_available", lambda: False)
    with pytest.raises(LlmopsError, match="--provider local"):
        cluster.resolve_provider("kind")
    assert cluster.resolve_provider("auto") == "local"


def test_crd_selection_charts_keeps_rendered_kinds_and_drops_unused_prometheus_operator_crds() -> None:
    kinds = {d["spec"]["names"]["kind"] for d in cluster.crd_documents("charts")}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"} <= kinds
    assert "Prometheus" not in kinds and "ThanosRuler" not in kinds
    assert kinds < {d["spec"]["names"]["kind"] for d in cluster.crd_documents("all")}
    assert cluster.crd_documents("none") == []


def test_unknown_crd_selection_is_a_usage_error() -> None:
    with pytest.raises(LlmopsError, match="unknown CRD selection"):
        cluster.crd_documents("some")


# ---------------------------------------------------------------------------
# Capacity: every shipped environment must fit the simulated pools at rest
# ---------------------------------------------------------------------------

ENV_FILES = sorted(paths.VALUES_DIR.glob("*.yaml"))
# Test-only overlays (e.g. digests for files whose placeholders the chart refuses) layer on every environment.
TEST_OVERLAYS = sorted((paths.REPO_ROOT / "tests" / "fixtures" / "overlays").glob("*.yaml"))
# Under `make test` (-n 2) another worker's cluster test holds GPUs while an environment is installed.
PARALLEL_RELEASES = 2


@pytest.mark.parametrize("env", ENV_FILES, ids=[e.stem for e in ENV_FILES])
def test_every_environment_fits_the_default_pools_twice_at_its_autoscalers_minimum(env: Path) -> None:
    manifests = render.render("llmops-stack", [env, *TEST_OVERLAYS], helm="helm3", namespace="fit")
    assert cluster.workloads(manifests), f"{env.name} renders no workload"
    assert cluster.capacity_problems(manifests, copies=PARALLEL_RELEASES) == []


def _deployment(name: str, replicas: int | None = None, gpus: int = 0, product: str | None = None) -> dict:
    pod: dict = {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}
    if gpus:
        pod["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": str(gpus)}
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if product:
        pod["nodeSelector"] = {cluster.GPU_PRODUCT_LABEL: product}
    spec: dict = {"template": {"spec": pod}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def _scaler(kind: str, target: str, **spec: int) -> dict:
    return {"kind": kind, "metadata": {"name": f"s-{target}"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": target}, **spec}}


def test_workloads_run_the_autoscalers_minimum_when_the_chart_leaves_replicas_unset() -> None:
    objs = [
        _deployment("keda"), _scaler("ScaledObject", "keda", minReplicaCount=4, maxReplicaCount=8),
        _deployment("keda-default"), _scaler("ScaledObject", "keda-default"),
        _deployment("hpa"), _scaler("HorizontalPodAutoscaler", "hpa", minReplicas=3, maxReplicas=5),
        _deployment("bare"),
        _deployment("fixed", replicas=2),
    ]
    got = {w.name: (w.replicas, w.autoscaler) for w in cluster.workloads(objs)}
    assert got == {
        "keda": (4, "ScaledObject/s-keda"),
        "keda-default": (0, "ScaledObject/s-keda-default"),  # KEDA's own default: scale to zero
        "hpa": (3, "HorizontalPodAutoscaler/s-hpa"),
        "bare": (1, ""),
        "fixed": (2, ""),
    }


def test_capacity_counts_the_autoscalers_minimum_not_one_pod() -> None:
    pools = (cluster.NodePool("gpu", 1, gpus=8, labels={cluster.GPU_PRODUCT_LABEL: "H"},
                              taints=(cluster.Taint(cluster.GPU_RESOURCE),)),)
    objs = [_deployment("tp8", gpus=8, product="H"), _scaler("ScaledObject", "tp8", minReplicaCount=2)]
    (problem,) = cluster.capacity_problems(objs, pools)
    assert "Deployment tp8: 1 of 2 pods" in problem
    assert cluster.capacity_problems([objs[0]], pools) == []  # one pod alone would fit


def test_capacity_names_a_gpu_product_no_pool_has_and_a_lost_toleration() -> None:
    pools = cluster.DEFAULT_POOLS
    (problem,) = cluster.capacity_problems([_deployment("a100", gpus=1, product="NVIDIA-A100")], pools)
    assert "Deployment a100: no simulated node matches it" in problem
    untolerated = _deployment("gpu", gpus=1)
    del untolerated["spec"]["template"]["spec"]["tolerations"]
    (problem,) = cluster.capacity_problems([untolerated], pools)
    assert "GPU taint not tolerated" in problem
