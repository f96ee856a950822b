"""The product: charts/llmops-stack with every environment file that fits the simulated cluster, Helm 3 and Helm 4.

Per environment: install --wait into a PSA-restricted namespace, every
Deployment Available, GPU pods only on GPU nodes (CPU pods never there), the
real admission accepted every pod, helm test passes, an upgrade with changed
values and a rollback, and uninstall leaves only what is documented as kept.
Upgrades from released versions (releases.yaml, installed from an OCI
registry) are in test_upgrade_path.py. Install-to-ready times go to reports/cluster/install-times.json.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import cluster, paths, release, render

from .conftest import kubectl_json, wait_until

UMBRELLA = paths.CHARTS_DIR / "llmops-stack"
ENV_FILES = sorted(paths.VALUES_DIR.glob("*.yaml"))
READY_TIMEOUT_S = 120
INSTALL_TIMEOUT = "3m"
# Objects Helm is documented to leave behind on uninstall (resource-policy: keep).
KEEP_ANNOTATION = "helm.sh/resource-policy"
UPGRADE_MARK = {"vllm": {"modelDefaults": {"extraEnv": [{"name": "LLMOPS_UPGRADE_MARK", "value": "2"}]}}}
TIMES_FILE = paths.REPO_ROOT / "reports" / "cluster" / "install-times.json"


def fit(env: Path | list[Path], helm_bin: str = "helm3") -> str:
    """Why ENV (a values file, or files in order) cannot run on the simulated cluster, or "" when it fits."""
    manifests = render.render(UMBRELLA, env if isinstance(env, list) else [env], helm=helm_bin, namespace="fit-check")
    pool_gpus = max(p.gpus for p in cluster.DEFAULT_POOLS)
    total_gpus = sum(p.gpus * p.count for p in cluster.DEFAULT_POOLS)
    wanted = 0
    for m in manifests:
        if m.kind == "Service" and m.obj.get("spec", {}).get("type") == "LoadBalancer":
            return f"Service {m.name} is a LoadBalancer (Helm 3 --wait waits for an IP that never comes)"
        if m.kind not in ("Deployment", "StatefulSet"):
            continue
        spec = m.obj["spec"]["template"]["spec"]
        product = (spec.get("nodeSelector") or {}).get(cluster.GPU_PRODUCT_LABEL)
        products = {p.labels.get(cluster.GPU_PRODUCT_LABEL) for p in cluster.DEFAULT_POOLS}
        if product and product not in products:
            return f"{m.kind} {m.name} selects GPU product {product}; the simulated pools have {sorted(filter(None, products))}"
        per_pod = sum(int((c.get("resources", {}).get("limits") or {}).get(cluster.GPU_RESOURCE, 0))
                      for c in spec.get("containers", []))
        if per_pod > pool_gpus:
            return f"{m.kind} {m.name} wants {per_pod} GPUs per pod; a simulated node has {pool_gpus}"
        wanted += per_pod * int(m.obj["spec"].get("replicas", 1) or 0)
    if wanted > total_gpus:
        return f"needs {wanted} GPUs in total; the simulated cluster has {total_gpus}"
    return ""


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
) -> tuple[list[str], set[str]]:
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
    docs += [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": pc},
              "value": 1000, "description": "platform-provided (llmops cluster tier)"} for pc in sorted(named)]
    if docs:
        cluster.kubectl(info.name, "apply", "-f", "-", input_text=yaml.safe_dump_all(docs))
    return [d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolume"], prepared


def _deployments(info: cluster.ClusterInfo, namespace: str) -> list[dict[str, Any]]:
    return list(kubectl_json(info, "get", "deployments", "-n", namespace)["items"])


def _gpu_request(pod: dict[str, Any]) -> int:
    return sum(int((c.get("resources", {}).get("limits") or {}).get(cluster.GPU_RESOURCE, 0))
               for c in pod["spec"]["containers"])


def _assert_placement(info: cluster.ClusterInfo, namespace: str) -> None:
    gpu_nodes = {n["name"] for n in info.nodes if int(n["gpus"]) > 0}
    pods = kubectl_json(info, "get", "pods", "-n", namespace)["items"]
    for pod in pods:
        node = pod["spec"].get("nodeName")
        if not node:
            continue
        if _gpu_request(pod):
            assert node in gpu_nodes, f"GPU pod {pod['metadata']['name']} landed on non-GPU node {node}"
        else:
            assert node not in gpu_nodes, f"CPU-only pod {pod['metadata']['name']} landed on GPU node {node}"


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


@pytest.mark.parametrize("env", ENV_FILES, ids=[e.stem for e in ENV_FILES])
def test_environment_installs_runs_tests_upgrades_rolls_back_and_uninstalls_cleanly(
    env: Path, helm_bin: str, local_cluster: cluster.ClusterInfo
) -> None:
    reason = fit(env, helm_bin)
    if reason:
        pytest.xfail(f"{env.name} does not fit the simulated cluster: {reason}")
    # Release names are unique per test so cluster-scoped objects named after
    # the release never collide between parallel tests.
    name = f"{env.stem}-h{helm_bin[-1]}"
    namespace = name
    release.ensure_namespace(namespace, cluster_name=local_cluster.name)
    pvs, prepared = _bind_volumes(local_cluster, namespace,
                                  render.render(UMBRELLA, [env], helm=helm_bin, release=name, namespace=namespace))
    rel = release.Release(name, namespace, helm_bin, local_cluster.name)
    try:
        started = time.monotonic()
        rel.install(UMBRELLA, [env], timeout=INSTALL_TIMEOUT, create_namespace=False)
        names = [d["metadata"]["name"] for d in _deployments(local_cluster, namespace)]
        assert names, "the release created no Deployment"
        _wait_available(local_cluster, namespace)
        _record_time(env.stem, helm_bin, time.monotonic() - started)

        _assert_placement(local_cluster, namespace)
        _assert_admission_accepted_every_pod(local_cluster, namespace)
        rel.test(timeout="2m")

        rel.upgrade(UMBRELLA, [env], set_values=UPGRADE_MARK, timeout=INSTALL_TIMEOUT)
        _wait_available(local_cluster, namespace)
        assert _has_mark(local_cluster, namespace)
        _assert_placement(local_cluster, namespace)

        rel.rollback(1, timeout=INSTALL_TIMEOUT)
        _wait_available(local_cluster, namespace)
        assert not _has_mark(local_cluster, namespace)
        assert [h["revision"] for h in rel.history()] == [1, 2, 3]

        rel.uninstall(timeout=INSTALL_TIMEOUT)
        _assert_nothing_left(local_cluster, namespace, prepared)
    finally:
        if rel.status() is not None:
            rel.uninstall(wait=False)
        cluster.kubectl(local_cluster.name, "delete", "namespace", namespace, "--wait=false")
        if pvs:
            cluster.kubectl(local_cluster.name, "delete", "pv", *pvs, "--wait=false")


def _wait_available(info: cluster.ClusterInfo, namespace: str) -> None:
    """Every Deployment rolled out and Available (0 replicas counts: a release may scale a model to zero)."""

    def not_ready() -> list[str]:
        bad = []
        for d in _deployments(info, namespace):
            st, want = d.get("status", {}), d["spec"].get("replicas", 1)
            if (st.get("observedGeneration", 0) < d["metadata"]["generation"]
                    or st.get("updatedReplicas", 0) != want or st.get("availableReplicas", 0) != want):
                bad.append(f"{d['metadata']['name']} {st.get('availableReplicas', 0)}/{want}")
        return bad

    wait_until("Deployments Available", READY_TIMEOUT_S, lambda: _deployments(info, namespace) and not not_ready(),
               not_ready)
