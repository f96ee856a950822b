"""The product: charts/llmops-stack with every environment file that fits the simulated cluster, Helm 3 and Helm 4.

Per environment: install --wait into a PSA-restricted namespace, every
Deployment Available, GPU pods only on GPU nodes (CPU pods never there), the
real admission accepted every pod, an upgrade with changed values and a
rollback, and uninstall leaves only what is documented as kept. The local
environment runs on the real node, where `helm test` runs its real script;
environments on kwok pools only show their test hook (a kwok pod runs nothing,
so a passing `helm test` there would prove nothing).
Upgrades from released versions (releases.yaml, installed from an OCI
registry) are in test_upgrade_path.py. Install-to-ready times go to reports/cluster/install-times.json.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import cluster, environments, paths
from llmops.cluster import node, release
from llmops.validate import render

from .conftest import kubectl_json, kubelet_started, wait_until

UMBRELLA = paths.CHARTS_DIR / "llmops-stack"
ENV_FILES = sorted(paths.VALUES_DIR.glob("*.yaml"))
READY_TIMEOUT_S = 120
INSTALL_TIMEOUT = "3m"
# Objects Helm is documented to leave behind on uninstall (resource-policy: keep).
KEEP_ANNOTATION = "helm.sh/resource-policy"
UPGRADE_MARK = {"vllm": {"modelDefaults": {"extraEnv": [{"name": "LLMOPS_UPGRADE_MARK", "value": "2"}]}}}
TIMES_FILE = paths.REPO_ROOT / "reports" / "cluster" / "install-times.json"
# Environments whose every image `llmops cluster up` builds for the real node.
REAL_NODE_ENVS = ("local",)


# Room for one release per pytest-xdist worker: environments install one at a time, but other
# workers' cluster tests hold GPUs of the same pools meanwhile.
PARALLEL_RELEASES = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def fit(env: Path | list[Path], helm_bin: str = "helm3") -> str:
    """Why ENV cannot run on the simulated cluster at rest (autoscalers at their minimum), or "" when it fits.

    ENV is a shipped values file (the test-only digest overlay is layered on
    it) or a list of files in order, taken as given.
    """
    files = env if isinstance(env, list) else environments.test_layers([env])
    manifests = render.render(UMBRELLA, files, helm=helm_bin, namespace="fit-check")
    return "; ".join(cluster.capacity_problems(manifests, copies=PARALLEL_RELEASES))


def _record_time(env: str, helm_bin: str, seconds: float) -> None:
    """Merge one figure into the shared file; xdist workers write it concurrently."""
    TIMES_FILE.parent.mkdir(parents=True, exist_ok=True)
    with TIMES_FILE.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = json.loads(TIMES_FILE.read_text()) if TIMES_FILE.exists() else {}
        data.setdefault(env, {})[helm_bin] = round(seconds, 2)
        tmp = TIMES_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, TIMES_FILE)


def _pv(namespace: str, claim: str, spec: dict[str, Any]) -> dict[str, Any]:
    name = f"pv-{namespace}-{claim}"[:63].rstrip("-.")  # a cut name must still end alphanumeric
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "storageClassName": spec.get("storageClassName") or "",
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": namespace, "name": claim},
            "hostPath": {"path": f"/tmp/llmops-pv/{name}"},
        },
    }


def _bind_volumes(
    info: cluster.ClusterInfo, namespace: str, manifests: list[render.Manifest]
) -> tuple[list[str], set[str], list[str]]:
    """Give every claim the release uses a PV (there is no provisioner here); the real PV controller binds them.

    Claims the pods mount but the chart does not render (an existing claim,
    e.g. ``source: pvc://models/...``) are what the environment file says is
    prepared out of band: the test prepares them the same way.
    """
    rendered = {m.name: m.obj["spec"] for m in manifests if m.kind == "PersistentVolumeClaim"}
    mounted = {
        v["persistentVolumeClaim"]["claimName"]
        for m in manifests if m.kind in ("Deployment", "StatefulSet")
        for v in m.obj["spec"]["template"]["spec"].get("volumes", []) or []
        if "persistentVolumeClaim" in v
    }
    docs: list[dict[str, Any]] = []
    prepared = mounted - set(rendered)
    for claim in sorted(prepared):
        spec = {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "resources": {"requests": {"storage": "10Gi"}}}
        docs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": claim, "namespace": namespace}, "spec": spec})
        rendered[claim] = spec
    docs += [_pv(namespace, claim, spec) for claim, spec in rendered.items()]
    # PriorityClasses the pods name but the chart does not create belong to the
    # platform (e.g. production's `llm-inference`): prepared out of band too.
    own = {m.name for m in manifests if m.kind == "PriorityClass"}
    named = {m.obj["spec"]["template"]["spec"].get("priorityClassName") for m in manifests
             if m.kind in ("Deployment", "StatefulSet")} - {None} - own
    # Only those missing: another release's chart may own one of that name (staging creates llm-inference).
    existing = set(cluster.kubectl(info.name, "get", "priorityclasses", "-o", "name").split())
    named = {pc for pc in named if f"priorityclass.scheduling.k8s.io/{pc}" not in existing}
    docs += [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": pc},
              "value": 1000, "description": "platform-provided (llmops cluster tier)"} for pc in sorted(named)]
    if docs:
        cluster.kubectl(info.name, "apply", "-f", "-", input_text=yaml.safe_dump_all(docs))
    pvs = [d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolume"]
    return pvs, prepared, sorted(named)


def _deployments(info: cluster.ClusterInfo, namespace: str) -> list[dict[str, Any]]:
    return list(kubectl_json(info, "get", "deployments", "-n", namespace)["items"])


def _hold_autoscaled_at_minimum(info: cluster.ClusterInfo, namespace: str, workloads: list[cluster.Workload]) -> None:
    """Scale each autoscaled workload to its autoscaler's minimum, as KEDA's HPA does right after install.

    The cluster tier runs no autoscaler; without this a Deployment that
    leaves replicas to KEDA would run 1 pod where production-h100 holds 4.
    """
    for w in workloads:
        if w.autoscaler:
            cluster.kubectl(info.name, "scale", f"{w.kind.lower()}/{w.name}", f"--replicas={w.replicas}", "-n", namespace)


def _assert_running_in_containers(info: cluster.ClusterInfo, namespace: str) -> None:
    """Every pod of NAMESPACE is on the real node with containers containerd started."""
    pods = kubectl_json(info, "get", "pods", "-n", namespace)["items"]
    real = {n["name"] for n in info.nodes if n["pool"] == node.NODE_LABEL_POOL}
    for pod in pods:
        assert pod["spec"].get("nodeName") in real, f"{pod['metadata']['name']} is on {pod['spec'].get('nodeName')}"
        for c in pod["status"].get("containerStatuses", []):
            assert c.get("containerID", "").startswith("containerd://"), c


def _assert_placement(info: cluster.ClusterInfo, namespace: str, workloads: list[cluster.Workload]) -> None:
    """Each workload runs exactly its at-rest replicas, every pod bound to a node of a pool it belongs on."""
    assert workloads, "the release has no workload to place"
    pools = {p.name: p for p in cluster.DEFAULT_POOLS}
    node_pool = {n["name"]: pools[n["pool"]] for n in info.nodes if n["pool"] in pools}
    # The real node takes CPU pods and its fake-GPU simulator pods; it is no kwok pool.
    real_nodes = {n["name"] for n in info.nodes if n["pool"] == node.NODE_LABEL_POOL}
    pods = kubectl_json(info, "get", "pods", "-n", namespace)["items"]
    for w in workloads:
        mine = [p for p in pods if w.selector.items() <= (p["metadata"].get("labels") or {}).items()
                and not p["metadata"].get("deletionTimestamp") and p.get("status", {}).get("phase") != "Succeeded"]
        placed = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in mine}
        assert len(placed) == w.replicas and all(placed.values()), (
            f"{w.kind} {w.name}: want {w.replicas} scheduled pods ({w.autoscaler or 'spec.replicas'}), got {placed}")
        for pod, where in placed.items():
            if where in real_nodes:
                assert cluster.GPU_PRODUCT_LABEL not in w.node_selector, (
                    f"{pod} selects a GPU product yet landed on the real node {where}")
                continue
            pool = node_pool.get(str(where))
            assert pool is not None, f"{pod} is on {where}, which is in no simulated pool"
            labels = {cluster.POOL_LABEL: pool.name, **pool.labels}
            assert all(labels.get(k) == v for k, v in w.node_selector.items()), (
                f"{pod} is on {where} (pool {pool.name}), which lacks its nodeSelector {w.node_selector}")
            if w.gpus:
                assert pool.gpus >= w.gpus, f"GPU pod {pod} landed on {where} (pool {pool.name}, {pool.gpus} GPUs)"
            else:
                assert pool.gpus == 0, f"CPU-only pod {pod} landed on GPU node {where} (pool {pool.name})"


def _assert_admission_accepted_every_pod(info: cluster.ClusterInfo, namespace: str) -> None:
    events = kubectl_json(info, "get", "events", "-n", namespace, "--field-selector", "reason=FailedCreate")["items"]
    refused = [e["message"] for e in events if "PodSecurity" in e.get("message", "") or "forbidden" in e.get("message", "")]
    assert not refused, f"admission refused pods: {refused}"
    for d in _deployments(info, namespace):
        assert d["status"].get("readyReplicas", 0) == d["spec"]["replicas"], d["metadata"]["name"]


def _assert_nothing_left(info: cluster.ClusterInfo, namespace: str, prepared: set[str] = frozenset()) -> None:
    wait_until("the release's pods to go", READY_TIMEOUT_S,
               lambda: not kubectl_json(info, "get", "pods", "-n", namespace)["items"])
    kinds = "deployments,statefulsets,services,configmaps,secrets,serviceaccounts,persistentvolumeclaims,poddisruptionbudgets"
    left = [o for o in kubectl_json(info, "get", kinds, "-n", namespace)["items"]
            if o["metadata"]["name"] not in ("kube-root-ca.crt", "default") and o["metadata"]["name"] not in prepared]
    undocumented = [f"{o['kind']}/{o['metadata']['name']}" for o in left
                    if (o["metadata"].get("annotations") or {}).get(KEEP_ANNOTATION) != "keep"]
    assert not undocumented, f"uninstall left objects that are not marked {KEEP_ANNOTATION}=keep: {undocumented}"


def _has_mark(info: cluster.ClusterInfo, namespace: str) -> bool:
    return any(
        any(e.get("name") == "LLMOPS_UPGRADE_MARK" for c in d["spec"]["template"]["spec"]["containers"]
            for e in c.get("env", []) or [])
        for d in _deployments(info, namespace)
    )


def test_umbrella_chart_and_environment_files_exist() -> None:
    assert (UMBRELLA / "Chart.yaml").exists(), "charts/llmops-stack is missing: the cluster tier installs it"
    assert (paths.VALUES_DIR / "local.yaml").exists(), "values/local.yaml is missing"


@pytest.fixture
def one_environment_at_a_time(local_cluster: cluster.ClusterInfo) -> Iterator[None]:
    """Environments name cluster-scoped objects (the PriorityClass production expects the platform to
    provide is the one staging's chart creates): across xdist workers they install one at a time, each
    removing what it prepared, so no release meets another's. A file lock, because `--dist loadgroup`
    with xdist_group marks did not keep a group on one worker here (pytest 9.2, xdist 3.8)."""
    lock = paths.cache_root() / "locks" / f"cluster-{local_cluster.name}-environments.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.mark.parametrize("env", ENV_FILES, ids=[e.stem for e in ENV_FILES])
def test_environment_installs_runs_tests_upgrades_rolls_back_and_uninstalls_cleanly(
    env: Path, helm_bin: str, local_cluster: cluster.ClusterInfo, one_environment_at_a_time: None
) -> None:
    reason = fit(env, helm_bin)
    # A shipped environment that does not fit is a failure, never a skipped case: size the pools in llmops.cluster.
    assert not reason, f"{env.name} does not fit the simulated cluster: {reason}"
    # Release names are unique per test so cluster-scoped objects named after
    # the release never collide between parallel tests.
    name = f"{env.stem}-h{helm_bin[-1]}"
    namespace = name
    # The local environment runs on the real node (its images are built
    # here); the others land on the kwok pools they select.
    real = env.stem in REAL_NODE_ENVS and cluster.has_real_node(local_cluster.name)
    release.ensure_namespace(namespace, cluster_name=local_cluster.name, real_node=real)
    layers = environments.test_layers([env])  # test-only digests over production placeholders
    manifests = render.render(UMBRELLA, layers, helm=helm_bin, release=name, namespace=namespace)
    pvs, prepared, priority_classes = _bind_volumes(local_cluster, namespace, manifests)
    workloads = cluster.workloads(manifests)
    rel = release.Release(name, namespace, helm_bin, local_cluster.name, real_node=real)
    try:
        started = time.monotonic()
        rel.install(UMBRELLA, layers, timeout=INSTALL_TIMEOUT, create_namespace=False)
        names = [d["metadata"]["name"] for d in _deployments(local_cluster, namespace)]
        assert names, "the release created no Deployment"
        _hold_autoscaled_at_minimum(local_cluster, namespace, workloads)
        _wait_available(local_cluster, namespace)
        _record_time(env.stem, helm_bin, time.monotonic() - started)

        _assert_placement(local_cluster, namespace, workloads)
        _assert_admission_accepted_every_pod(local_cluster, namespace)
        if real:
            rel.test(timeout="2m", logs=True)
            _assert_running_in_containers(local_cluster, namespace)
            assert kubelet_started(local_cluster, namespace, "test-chat"), "helm test passed without running its pod"
        else:
            # On kwok nodes a test pod runs nothing, so `helm test` is refused
            # there. It runs where pods are real (above); here the hook must at
            # least exist and target the engine.
            hooks = [h for h in yaml.safe_load_all(release.helm("get", "hooks", name, "-n", namespace, helm_bin=helm_bin,
                                                               cluster_name=local_cluster.name)) if h]
            tests = [h for h in hooks if h["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
            assert tests and all(".svc:" in json.dumps(h["spec"]) for h in tests), hooks

        rel.upgrade(UMBRELLA, layers, set_values=UPGRADE_MARK, timeout=INSTALL_TIMEOUT)
        _wait_available(local_cluster, namespace)
        assert _has_mark(local_cluster, namespace)
        _assert_placement(local_cluster, namespace, workloads)

        rel.rollback(1, timeout=INSTALL_TIMEOUT)
        _wait_available(local_cluster, namespace)
        assert not _has_mark(local_cluster, namespace)
        assert [h["revision"] for h in rel.history()] == [1, 2, 3]

        rel.uninstall(timeout=INSTALL_TIMEOUT)
        _assert_nothing_left(local_cluster, namespace, prepared)
    finally:
        remove_release(local_cluster, rel, pvs, priority_classes)


def remove_release(info: cluster.ClusterInfo, rel: release.Release, pvs: list[str], priority_classes: list[str]) -> None:
    """Whatever an environment's install left, gone without waiting: the release, its namespace, the
    PersistentVolumes and PriorityClasses the test prepared for it (cluster-scoped, so not in the namespace)."""
    if rel.status() is not None:
        rel.uninstall(wait=False)
    cluster.kubectl(info.name, "delete", "namespace", rel.namespace, "--wait=false")
    if pvs:
        cluster.kubectl(info.name, "delete", "pv", *pvs, "--wait=false")
    if priority_classes:
        cluster.kubectl(info.name, "delete", "priorityclass", *priority_classes, "--ignore-not-found")


def _wait_available(info: cluster.ClusterInfo, namespace: str) -> None:
    """Every Deployment rolled out and Available (0 replicas counts: a release may scale a model to zero)."""

    def not_ready() -> list[str]:
        bad = []
        for d in _deployments(info, namespace):
            st, want = d.get("status", {}), d["spec"].get("replicas", 1)
            # `replicas` counts the old ReplicaSet's pods too: with minReadySeconds the new pod is
            # updated and the old one still available for a while, so only this says the rollout ended.
            if (st.get("observedGeneration", 0) < d["metadata"]["generation"] or st.get("replicas", 0) != want
                    or st.get("updatedReplicas", 0) != want or st.get("availableReplicas", 0) != want):
                bad.append(f"{d['metadata']['name']} {st.get('availableReplicas', 0)}/{want}")
        return bad

    wait_until("Deployments Available", READY_TIMEOUT_S, lambda: _deployments(info, namespace) and not not_ready(),
               not_ready)
