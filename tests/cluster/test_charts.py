"""The product: charts/llmops-stack with every environment file that fits the simulated cluster, Helm 3 and Helm 4.

Per environment: install --wait into a PSA-restricted namespace, every
Deployment Available, GPU pods only on GPU nodes (CPU pods never there), the
real admission accepted every pod, helm test passes, an upgrade with changed
values and a rollback, and uninstall leaves only what is documented as kept.
Separately: an upgrade from the previous released chart version, packaged
from git history. Install-to-ready times go to reports/cluster/install-times.json.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
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


# Room for one release per pytest-xdist worker: environments install one at a time, but other
# workers' cluster tests hold GPUs of the same pools meanwhile.
PARALLEL_RELEASES = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def fit(env: Path, helm_bin: str = "helm3") -> str:
    """Why ENV cannot run on the simulated cluster at rest (autoscalers at their minimum), or "" when it fits."""
    manifests = render.render(UMBRELLA, [env], helm=helm_bin, namespace="fit-check")
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
    name = f"pv-{namespace}-{claim}"[:63]
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


def _assert_placement(info: cluster.ClusterInfo, namespace: str, workloads: list[cluster.Workload]) -> None:
    """Each workload runs exactly its at-rest replicas, every pod bound to a node of a pool it belongs on."""
    assert workloads, "the release has no workload to place"
    pools = {p.name: p for p in cluster.DEFAULT_POOLS}
    node_pool = {n["name"]: pools[n["pool"]] for n in info.nodes if n["pool"] in pools}
    pods = kubectl_json(info, "get", "pods", "-n", namespace)["items"]
    for w in workloads:
        mine = [p for p in pods if w.selector.items() <= (p["metadata"].get("labels") or {}).items()
                and not p["metadata"].get("deletionTimestamp") and p.get("status", {}).get("phase") != "Succeeded"]
        placed = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in mine}
        assert len(placed) == w.replicas and all(placed.values()), (
            f"{w.kind} {w.name}: want {w.replicas} scheduled pods ({w.autoscaler or 'spec.replicas'}), got {placed}")
        for pod, node in placed.items():
            pool = node_pool.get(str(node))
            assert pool is not None, f"{pod} is on {node}, which is in no simulated pool"
            labels = {cluster.POOL_LABEL: pool.name, **pool.labels}
            assert all(labels.get(k) == v for k, v in w.node_selector.items()), (
                f"{pod} is on {node} (pool {pool.name}), which lacks its nodeSelector {w.node_selector}")
            if w.gpus:
                assert pool.gpus >= w.gpus, f"GPU pod {pod} landed on {node} (pool {pool.name}, {pool.gpus} GPUs)"
            else:
                assert pool.gpus == 0, f"CPU-only pod {pod} landed on GPU node {node} (pool {pool.name})"


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
    release.ensure_namespace(namespace, cluster_name=local_cluster.name)
    manifests = render.render(UMBRELLA, [env], helm=helm_bin, release=name, namespace=namespace)
    pvs, prepared, priority_classes = _bind_volumes(local_cluster, namespace, manifests)
    workloads = cluster.workloads(manifests)
    rel = release.Release(name, namespace, helm_bin, local_cluster.name)
    try:
        started = time.monotonic()
        rel.install(UMBRELLA, [env], timeout=INSTALL_TIMEOUT, create_namespace=False)
        names = [d["metadata"]["name"] for d in _deployments(local_cluster, namespace)]
        assert names, "the release created no Deployment"
        _hold_autoscaled_at_minimum(local_cluster, namespace, workloads)
        _wait_available(local_cluster, namespace)
        _record_time(env.stem, helm_bin, time.monotonic() - started)

        _assert_placement(local_cluster, namespace, workloads)
        _assert_admission_accepted_every_pod(local_cluster, namespace)
        rel.test(timeout="2m")

        rel.upgrade(UMBRELLA, [env], set_values=UPGRADE_MARK, timeout=INSTALL_TIMEOUT)
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
        if rel.status() is not None:
            rel.uninstall(wait=False)
        cluster.kubectl(local_cluster.name, "delete", "namespace", namespace, "--wait=false")
        if pvs:
            cluster.kubectl(local_cluster.name, "delete", "pv", *pvs, "--wait=false")
        if priority_classes:
            cluster.kubectl(local_cluster.name, "delete", "priorityclass", *priority_classes, "--ignore-not-found")


# ---------------------------------------------------------------------------
# Upgrade from the previous released chart version (git history)
# ---------------------------------------------------------------------------


def _chart_version_at(rev: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "show", f"{rev}:charts/llmops-stack/Chart.yaml"],
                          capture_output=True, text=True, check=False)
    return str(yaml.safe_load(proc.stdout)["version"]) if proc.returncode == 0 else None


def _exists_at(rev: str, path: str) -> bool:
    return subprocess.run(["git", "-C", str(paths.REPO_ROOT), "cat-file", "-e", f"{rev}:{path}"],
                          capture_output=True, check=False).returncode == 0


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


def previous_release(dest: Path) -> tuple[str, str, Path]:
    """(commit, version, chart dir) of the newest committed umbrella version older than the working tree's.

    While the chart has only ever had one version, its oldest commit stands in
    as "the previous release" (same version number, older contents).
    """
    current = str(yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())["version"])
    revs = subprocess.run(["git", "-C", str(paths.REPO_ROOT), "log", "--format=%H", "--", "charts/llmops-stack/Chart.yaml"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert revs, "charts/llmops-stack/Chart.yaml was never committed: there is no released version to upgrade from"
    chosen = next((r for r in revs if _chart_version_at(r) not in (None, current)), revs[-1])
    archive = dest / "charts.tar"
    paths_at_rev = ["charts"] + (["values"] if _exists_at(chosen, "values") else [])
    subprocess.run(["git", "-C", str(paths.REPO_ROOT), "archive", "-o", str(archive), chosen, *paths_at_rev], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return chosen, str(_chart_version_at(chosen)), dest / "charts" / "llmops-stack"


def test_upgrade_from_the_previous_released_version_with_changed_values_then_rollback(
    helm_bin: str, local_cluster: cluster.ClusterInfo, tmp_path: Path
) -> None:
    commit, version, old_chart = previous_release(tmp_path)
    # The old release is installed the way it was released: with the env file of
    # its own commit when it had one; the upgrade then uses today's file.
    old_env = tmp_path / "values" / "local.yaml"
    env = paths.VALUES_DIR / "local.yaml"
    if not old_env.exists():
        old_env = env
    namespace = f"upgrade-h{helm_bin[-1]}"
    release.ensure_namespace(namespace, cluster_name=local_cluster.name)
    rel = release.Release(namespace, namespace, helm_bin, local_cluster.name)
    try:
        rel.install(old_chart, [old_env], timeout=INSTALL_TIMEOUT, create_namespace=False)
        _wait_available(local_cluster, namespace)

        rel.upgrade(UMBRELLA, [env], set_values=UPGRADE_MARK, timeout=INSTALL_TIMEOUT)
        _wait_available(local_cluster, namespace)
        assert _has_mark(local_cluster, namespace)
        rel.test(timeout="2m")

        rel.rollback(1, timeout=INSTALL_TIMEOUT)
        history = rel.history()
        assert history[-1]["chart"] == f"llmops-stack-{version}", f"rollback did not return to {commit[:8]}"
        assert not _has_mark(local_cluster, namespace)
        rel.uninstall(timeout=INSTALL_TIMEOUT)
        _assert_nothing_left(local_cluster, namespace)
    finally:
        if rel.status() is not None:
            rel.uninstall(wait=False)
        cluster.kubectl(local_cluster.name, "delete", "namespace", namespace, "--wait=false")
