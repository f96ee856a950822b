"""Local Kubernetes clusters for the cluster tier, the demo and the e2e tier.

Two providers:

- ``local`` (default; no Docker needed): kwokctl's ``binary`` runtime starts
  a real etcd, kube-apiserver, kube-controller-manager and kube-scheduler
  built by the bootstrap from pinned Go modules (pyproject.toml), plus the
  kwok controller, which plays the kubelet for simulated nodes. Scheduling,
  admission (Pod Security included), API validation and the controllers are
  the real ones; containers never run.
- ``kind`` (when ``docker info`` works): a kind cluster whose nodes get the
  same pool labels, taints and extended resources.

Every file of a cluster lives under ``<cache>/clusters/<name>/`` (the
kubeconfig at ``kubeconfig`` in it), every port in 16000-16099, every
listener on 127.0.0.1; ``down`` stops the processes and removes the folder.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmops import paths, poll, procs, tools
from llmops.cluster import node
from llmops.errors import LlmopsError, ToolError

DEFAULT_NAME = "llmops"
PROVIDERS = ("local", "kind")
# The brief reserves 16000-16099 for the cluster; each cluster takes a block of 10.
PORT_MIN, PORT_MAX, PORT_BLOCK = 16000, 16099, 10


def port_block(port_base: int) -> int:
    """The index (0-9) of the port block PORT_BASE starts."""
    return (port_base - PORT_MIN) // PORT_BLOCK


API_READY_TIMEOUT_S = 60.0
NODES_READY_TIMEOUT_S = 60.0
CRDS_ESTABLISHED_TIMEOUT_S = 60.0

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
POOL_LABEL = "llmops.io/pool"
KWOK_VERSION_MODULE = "sigs.k8s.io/kwok"
# kwok's controller manages only nodes with this annotation (node_manifests sets it).
KWOK_NODE_SELECTOR = "kwok.x-k8s.io/node=fake"
REAL_NODES_ENV = "LLMOPS_REAL_NODES"
REAL_NODE_READY_TIMEOUT_S = 90.0
# Images every real node gets at `cluster up` (llmops.cluster.images table names).
NODE_IMAGES = ("pause", "llm-d-inference-sim", "python", "vllm-router")

# The stages kwokctl uses when it is given none (kwok v0.8.0, runtime binary:
# node lease on, heartbeat unchanged), read from the pinned kwok module and
# sent explicitly so the set is the pinned one, not whatever kwokctl picks.
DEFAULT_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)

# No Stage of ours: kwok's defaults complete only Job-owned pods, so a `helm
# test` pod on a kwok node would stay Running. Test pods run on the real node,
# where their own script decides (require_real_pods() says so up front).
HELM_TEST_NEEDS = "helm test needs a real node: start the cluster with `llmops cluster up --real-nodes 1`"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class NodePool:
    """A group of identical simulated nodes."""

    name: str
    count: int
    cpu: str = "32"
    memory: str = "128Gi"
    ephemeral_storage: str = "500Gi"
    pods: int = 110
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()

    def node_names(self, cluster: str) -> list[str]:
        return [f"{cluster}-{self.name}-{i}" for i in range(self.count)]


H100_PRODUCT = "NVIDIA-H100-80GB-HBM3"
L4_PRODUCT = "NVIDIA-L4"
DEFAULT_POOLS: tuple[NodePool, ...] = (
    NodePool("cpu", 2, cpu="16", memory="64Gi"),
    # Four H100 nodes: production-70b at rest is two TP-8 replicas (two whole
    # nodes), and under `make test` a second xdist worker's cluster test holds
    # GPUs meanwhile. capacity_problems() and a unit test keep every shipped
    # environment fitting twice over.
    NodePool(
        "gpu-h100",
        4,
        cpu="96",
        memory="1024Gi",
        ephemeral_storage="2Ti",
        gpus=8,
        labels={GPU_PRODUCT_LABEL: H100_PRODUCT, "nvidia.com/gpu.count": "8", "nvidia.com/gpu.present": "true"},
        taints=(Taint(GPU_RESOURCE, "", "NoSchedule"),),
    ),
    # values/staging.yaml targets L4s (4 per node, as on common cloud L4 shapes).
    NodePool(
        "gpu-l4",
        2,
        cpu="48",
        memory="192Gi",
        ephemeral_storage="1Ti",
        gpus=4,
        labels={GPU_PRODUCT_LABEL: L4_PRODUCT, "nvidia.com/gpu.count": "4", "nvidia.com/gpu.present": "true"},
        taints=(Taint(GPU_RESOURCE, "", "NoSchedule"),),
    ),
)


# ---------------------------------------------------------------------------
# What a release needs of the pools (the scheduler's fit, simplified)
# ---------------------------------------------------------------------------

WORKLOAD_KINDS = ("Deployment", "StatefulSet")
_FIT_RESOURCES = ("cpu", "memory", "ephemeral-storage", GPU_RESOURCE)


@dataclass(frozen=True)
class Workload:
    """One Deployment/StatefulSet of a release and the pods it runs when the release is at rest."""

    kind: str
    name: str
    replicas: int
    requests: dict[str, float]  # per pod: cpu, memory, ephemeral-storage, nvidia.com/gpu
    node_selector: dict[str, str]
    tolerates_gpu_taint: bool
    selector: dict[str, str] = field(default_factory=dict)  # spec.selector.matchLabels
    autoscaler: str = ""  # "ScaledObject/<name>" or "HorizontalPodAutoscaler/<name>" when one owns replicas

    @property
    def gpus(self) -> int:
        return int(self.requests.get(GPU_RESOURCE, 0))


def _quantity(value: Any) -> float:
    from kubernetes.utils.quantity import parse_quantity

    return float(parse_quantity(str(value)))


def _pod_requests(pod: dict[str, Any]) -> dict[str, float]:
    """Effective per-pod requests: the sum over containers, or the largest init container if bigger."""
    def of(c: dict[str, Any]) -> dict[str, float]:
        res = c.get("resources") or {}
        # A limit without a request means request = limit (extended resources such as GPUs only have limits).
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return {k: _quantity(v) for k, v in merged.items() if k in _FIT_RESOURCES}

    total: dict[str, float] = {}
    for c in pod.get("containers") or []:
        for k, v in of(c).items():
            total[k] = total.get(k, 0.0) + v
    for c in pod.get("initContainers") or []:
        for k, v in of(c).items():
            total[k] = max(total.get(k, 0.0), v)
    return total


def _autoscaler_minimums(objs: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, str]]:
    """(kind, name) of each scale target -> (the replicas its autoscaler holds at rest, the autoscaler)."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for o in objs:
        spec = o.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if o.get("kind") == "ScaledObject":
            # KEDA: minReplicaCount defaults to 0 (scale to zero when idle).
            minimum = int(spec.get("minReplicaCount", 0))
        elif o.get("kind") == "HorizontalPodAutoscaler":
            minimum = int(spec.get("minReplicas", 1))
        else:
            continue
        out[(str(ref.get("kind", "Deployment")), str(ref.get("name")))] = (minimum, f"{o['kind']}/{o['metadata']['name']}")
    return out


def workloads(objs: Iterable[Any]) -> list[Workload]:
    """The release's Deployments/StatefulSets with the replicas each runs at rest.

    ``spec.replicas`` when the chart sets it; when an autoscaler owns the
    count (no ``spec.replicas``), the autoscaler's minimum (KEDA
    ``minReplicaCount``, HPA ``minReplicas``), which is what it holds the
    Deployment at without load, not the 1 a bare Deployment gets.
    ``objs`` are dicts or ``llmops.validate.render.Manifest``.
    """
    plain = [dict(getattr(o, "obj", o)) for o in objs]
    minimums = _autoscaler_minimums(plain)
    out = []
    for o in plain:
        if o.get("kind") not in WORKLOAD_KINDS:
            continue
        name = str(o["metadata"]["name"])
        spec = o["spec"]
        pod = spec["template"]["spec"]
        replicas = spec.get("replicas")
        minimum, owner = minimums.get((str(o["kind"]), name), (None, ""))
        if replicas is None:
            replicas = minimum if minimum is not None else 1
        tolerates = any(
            t.get("operator") == "Exists" and t.get("key") in (None, "", GPU_RESOURCE)
            or t.get("key") == GPU_RESOURCE
            for t in pod.get("tolerations") or []
        )
        out.append(Workload(str(o["kind"]), name, int(replicas), _pod_requests(pod),
                            dict(pod.get("nodeSelector") or {}), tolerates,
                            dict((spec.get("selector") or {}).get("matchLabels") or {}), owner))
    return out


def _node_fits(pool: NodePool, w: Workload) -> bool:
    labels = {POOL_LABEL: pool.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", **pool.labels}
    if any(labels.get(k) != v for k, v in w.node_selector.items()):
        return False
    if pool.taints and not w.tolerates_gpu_taint:
        return False
    return w.gpus <= pool.gpus


def capacity_problems(objs: Iterable[Any], pools: Sequence[NodePool] = DEFAULT_POOLS, copies: int = 1) -> list[str]:
    """Why COPIES releases of OBJS at rest cannot all be scheduled on POOLS ([] when they can).

    A first-fit-decreasing placement over every node by GPUs, CPU, memory
    and ephemeral storage, honouring nodeSelector and the GPU taint: what
    the real scheduler checks for these pods, minus affinity and spread.
    ``copies`` > 1 accounts for releases installed side by side (the
    cluster tier runs its Helm 3 and Helm 4 cases in parallel workers).
    """
    problems: list[str] = []
    items = [dict(getattr(o, "obj", o)) for o in objs]
    for o in items:
        if o.get("kind") == "Service" and (o.get("spec") or {}).get("type") == "LoadBalancer":
            problems.append(f"Service {o['metadata']['name']} is a LoadBalancer (Helm 3 --wait waits for an IP that never comes)")
    free: list[tuple[NodePool, dict[str, float]]] = []
    for pool in pools:
        for _ in range(pool.count):
            free.append((pool, {"cpu": _quantity(pool.cpu), "memory": _quantity(pool.memory),
                                "ephemeral-storage": _quantity(pool.ephemeral_storage), GPU_RESOURCE: float(pool.gpus)}))
    pods = [w for w in workloads(items) for _ in range(w.replicas * copies)]
    pods.sort(key=lambda w: (w.gpus, w.requests.get("cpu", 0.0), w.requests.get("memory", 0.0)), reverse=True)
    unplaced: dict[str, int] = {}
    for w in pods:
        where = f"{w.kind} {w.name}"
        candidates = [(pool, left) for pool, left in free if _node_fits(pool, w)]
        if not candidates:
            problems.append(f"{where}: no simulated node matches it (nodeSelector {w.node_selector}, "
                            f"{w.gpus} GPUs per pod, GPU taint {'tolerated' if w.tolerates_gpu_taint else 'not tolerated'})")
            break
        for _pool, left in candidates:
            if all(w.requests.get(r, 0.0) <= left[r] for r in _FIT_RESOURCES):
                for r in _FIT_RESOURCES:
                    left[r] -= w.requests.get(r, 0.0)
                break
        else:
            unplaced[where] = unplaced.get(where, 0) + 1
    for where, n in unplaced.items():
        total = sum(1 for w in pods if f"{w.kind} {w.name}" == where)
        problems.append(f"{where}: {n} of {total} pods ({copies} release(s) at rest) do not fit the simulated pools")
    return list(dict.fromkeys(problems))


@dataclass(frozen=True)
class Ports:
    """Every listener of one local cluster, all inside the reserved range."""

    apiserver: int
    etcd: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kwok_controller: int

    @classmethod
    def from_base(cls, base: int) -> Ports:
        if not (PORT_MIN <= base and base + PORT_BLOCK - 1 <= PORT_MAX and (base - PORT_MIN) % PORT_BLOCK == 0):
            raise LlmopsError(
                f"port base {base} is outside {PORT_MIN}-{PORT_MAX} or not a multiple of {PORT_BLOCK} "
                f"above {PORT_MIN}; pick one of {', '.join(str(b) for b in range(PORT_MIN, PORT_MAX, PORT_BLOCK))}"
            )
        return cls(base, base + 1, base + 2, base + 3, base + 4, base + 5)

    def all(self) -> list[int]:
        return [self.apiserver, self.etcd, self.etcd_peer, self.controller_manager, self.scheduler, self.kwok_controller]


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------


def clusters_root() -> Path:
    return paths.cache_root() / "clusters"


def cluster_dir(name: str = DEFAULT_NAME) -> Path:
    return clusters_root() / name


def kubeconfig_path(name: str = DEFAULT_NAME) -> Path:
    """Where ``up`` writes the kubeconfig of cluster NAME (printed by ``up`` and ``status``)."""
    return cluster_dir(name) / "kubeconfig"


def _kwok_workdir(name: str) -> Path:
    return cluster_dir(name) / "kwok"


def _pki_dir(name: str) -> Path:
    """kwokctl's CA and admin certificate of cluster NAME."""
    return _kwok_workdir(name) / "clusters" / name / "pki"


def _provider_file(name: str) -> Path:
    return cluster_dir(name) / "provider"


# ---------------------------------------------------------------------------
# Manifests we generate
# ---------------------------------------------------------------------------


def node_manifests(pools: Sequence[NodePool], cluster: str = DEFAULT_NAME) -> list[dict[str, Any]]:
    """Node objects for kwok: the annotation hands them to the kwok controller."""
    nodes: list[dict[str, Any]] = []
    for pool in pools:
        capacity: dict[str, str] = {
            "cpu": pool.cpu,
            "memory": pool.memory,
            "ephemeral-storage": pool.ephemeral_storage,
            "pods": str(pool.pods),
        }
        if pool.gpus:
            capacity[GPU_RESOURCE] = str(pool.gpus)
        for node_name in pool.node_names(cluster):
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": node_name,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "kubernetes.io/hostname": node_name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "kubernetes.io/role": "agent",
                            "node-role.kubernetes.io/agent": "",
                            "type": "kwok",
                            POOL_LABEL: pool.name,
                            **pool.labels,
                        },
                    },
                    "spec": {"taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints]},
                    "status": {
                        "capacity": dict(capacity),
                        "allocatable": dict(capacity),
                        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake"},
                    },
                }
            )
    return nodes


def default_stages() -> list[dict[str, Any]]:
    """kwok's own default Stages, read from the pinned kwok module (not copied into this repo)."""
    spec = tools.load_specs()["kwok"]
    root = tools.go_module_dir(KWOK_VERSION_MODULE, spec.version)
    stages: list[dict[str, Any]] = []
    for rel in DEFAULT_STAGE_FILES:
        path = root / rel
        if not path.exists():
            raise ToolError(f"{path} is missing: kwok {spec.version} moved its default stages; update DEFAULT_STAGE_FILES")
        stages.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return stages


def kwokctl_config(
    ports: Ports, stages: Iterable[dict[str, Any]], real_node: node.NodeSpec | None = None
) -> list[dict[str, Any]]:
    """The kwokctl --config documents: options (binaries, ports, loopback), component patches, every Stage.

    kwok manages only the nodes it is given (annotation ``kwok.x-k8s.io/node:
    fake``), never a real node's pods. With a real node, the API server
    advertises the host end of the node's veth (where the node reaches it),
    its certificate names that address, and Services get the node's range.
    """
    binaries = {
        "etcdBinary": tools.require("etcd"),
        "kubeApiserverBinary": tools.require("kube-apiserver"),
        "kubeControllerManagerBinary": tools.require("kube-controller-manager"),
        "kubeSchedulerBinary": tools.require("kube-scheduler"),
        "kwokControllerBinary": tools.require("kwok"),
        "kubectlBinary": tools.require("kubectl"),
    }
    options: dict[str, Any] = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "kubeApiserverPort": ports.apiserver,
        "etcdPort": ports.etcd,
        "etcdPeerPort": ports.etcd_peer,
        "kubeControllerManagerPort": ports.controller_manager,
        "kubeSchedulerPort": ports.scheduler,
        "kwokControllerPort": ports.kwok_controller,
        "kubeAdmission": True,
        "kubeAuthorization": True,
        "quietPull": True,
        **{k: str(v.resolve()) for k, v in binaries.items()},
    }
    # Appended flags (not kwokctl's "override", which only rewrites flags it
    # already passes): the last occurrence of a flag wins.
    patches: list[dict[str, Any]] = [
        {
            "name": "kwok-controller",
            "extraArgs": [
                {"key": "manage-all-nodes", "value": "false", "override": False},
                {"key": "manage-nodes-with-annotation-selector", "value": KWOK_NODE_SELECTOR, "override": False},
            ],
        }
    ]
    if real_node is not None:
        options["kubeApiserverCertSANs"] = [real_node.host_ip, real_node.kubernetes_service_ip]
        patches.append({
            "name": "kube-apiserver",
            "extraArgs": [
                {"key": "advertise-address", "value": real_node.host_ip, "override": False},
                {"key": "service-cluster-ip-range", "value": real_node.service_cidr, "override": False},
                {"key": "enable-admission-plugins", "value": node.ADMISSION_PLUGINS, "override": False},
                # logs/exec/port-forward: the kubelet accepts clients signed by the cluster CA only.
                {"key": "kubelet-client-certificate", "value": str(_pki_dir(real_node.cluster) / "admin.crt"),
                 "override": False},
                {"key": "kubelet-client-key", "value": str(_pki_dir(real_node.cluster) / "admin.key"), "override": False},
                # The node's name resolves nowhere; its address does.
                {"key": "kubelet-preferred-address-types", "value": "InternalIP", "override": False},
            ],
        })
        patches.append({
            "name": "kube-controller-manager",
            "extraArgs": [{"key": "service-cluster-ip-range", "value": real_node.service_cidr, "override": False}],
        })
    config = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
        "componentsPatches": patches,
    }
    return [config, *stages]


# ---------------------------------------------------------------------------
# Running things
# ---------------------------------------------------------------------------


def _env(name: str) -> dict[str, str]:
    # kubectl's discovery cache goes with the cluster, not into ~/.kube/cache.
    return tools.tool_env({
        "KWOK_WORKDIR": str(_kwok_workdir(name)),
        "KUBECONFIG": str(kubeconfig_path(name)),
        "KUBECACHEDIR": str(cluster_dir(name) / "kube-cache"),
    })


def _run(argv: Sequence[str], name: str, *, input_text: str | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(
        list(argv), env=_env(name), input=input_text, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LlmopsError(f"`{' '.join(argv[:4])} ...` failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def kubectl(name: str, *args: str, input_text: str | None = None, timeout: float = 120) -> str:
    """Run the pinned kubectl against cluster NAME and return stdout."""
    return _run([str(tools.require("kubectl")), "--kubeconfig", str(kubeconfig_path(name)), *args], name,
                input_text=input_text, timeout=timeout)


@dataclass(frozen=True)
class DryRunResult:
    """What the API server said about one object under a server-side dry run."""

    kind: str
    name: str
    accepted: bool
    message: str = ""  # the refusal, or the warnings (e.g. Pod Security) of an accepted object


def server_dry_run(name: str, objs: Iterable[Any], namespace: str) -> list[DryRunResult]:
    """Send each object to cluster NAME's API server with ``--dry-run=server --validate=strict``.

    The server runs everything a real create runs except persisting: schema
    and defaulting, CRD structural schemas with their CEL rules
    (``x-kubernetes-validations``), unknown-field rejection, and admission
    (Pod Security warnings for workload templates). Namespaced objects
    without a namespace go to NAMESPACE, which must exist.
    """
    results = []
    for item in objs:
        obj = dict(getattr(item, "obj", item))
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or namespace
        argv = [str(tools.require("kubectl")), "--kubeconfig", str(kubeconfig_path(name)), "create",
                "--dry-run=server", "--validate=strict", "-n", str(ns), "-o", "name", "-f", "-"]
        proc = subprocess.run(argv, env=_env(name), input=json.dumps(obj), capture_output=True, text=True,
                              timeout=60, check=False)
        warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("Warning:")]
        if proc.returncode == 0:
            results.append(DryRunResult(str(obj.get("kind")), str(meta.get("name")), True, "\n".join(warnings)))
        else:
            results.append(DryRunResult(str(obj.get("kind")), str(meta.get("name")), False,
                                        (proc.stderr or proc.stdout).strip()))
    return results


def docker_available() -> bool:
    """True only when a Docker *engine* answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _wait(what: str, timeout: float, probe: Any, interval: float = 0.25) -> None:
    poll.until(what, probe, timeout=timeout, interval=interval, retry_on=(LlmopsError, subprocess.TimeoutExpired))


def api_ready(name: str = DEFAULT_NAME) -> bool:
    if not kubeconfig_path(name).exists():
        return False
    try:
        return kubectl(name, "get", "--raw", "/readyz", timeout=10).strip() == "ok"
    except (LlmopsError, subprocess.TimeoutExpired):
        return False


def _pids(name: str) -> dict[str, int]:
    """Component -> pid of a local cluster's processes, from kwokctl's pid files."""
    out: dict[str, int] = {}
    for pid_file in sorted((_kwok_workdir(name) / "clusters" / name / "pids").glob("*.pid")):
        try:
            out[pid_file.stem] = int(pid_file.read_text().strip())
        except ValueError:
            continue
    return out


# ---------------------------------------------------------------------------
# up / down / status
# ---------------------------------------------------------------------------


@dataclass
class ClusterInfo:
    name: str
    provider: str
    kubeconfig: Path
    server_version: str = ""
    nodes: list[dict[str, Any]] = field(default_factory=list)
    processes: dict[str, bool] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def resolve_provider(provider: str | None) -> str:
    if provider in (None, "auto"):
        return "kind" if docker_available() else "local"
    if provider not in PROVIDERS:
        raise LlmopsError(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    if provider == "kind" and not docker_available():
        raise LlmopsError("provider kind needs a Docker engine (`docker info` failed); use --provider local")
    return provider


def up(
    name: str = DEFAULT_NAME,
    provider: str | None = "local",
    *,
    pools: Sequence[NodePool] = DEFAULT_POOLS,
    port_base: int = PORT_MIN,
    install_crds: bool | str = True,
    progress: Any = None,
    real_nodes: int | None = None,
    node_gpus: int | None = None,
    node_gpu_product: str | None = None,
) -> ClusterInfo:
    """Start cluster NAME (or reuse it when its API already answers) and return its description.

    ``real_nodes`` (0 or 1; default ``$LLMOPS_REAL_NODES``, else 1) adds a
    real containerd/kubelet node (llmops.cluster.node) to the local provider's kwok pools.
    ``node_gpus`` (default node.FAKE_GPUS) fake GPUs its device plugin
    advertises; ``node_gpu_product`` gives it GPU feature discovery's labels
    for that product. A reused cluster keeps its node as it was started.
    """
    say = progress or (lambda _msg: None)
    provider = resolve_provider(provider)
    real = provider == "local" and real_node_count(real_nodes) > 0
    timings: dict[str, float] = {}
    started = time.monotonic()
    if api_ready(name):
        say(f"cluster {name} is already up; reusing it")
        spec = node.NodeSpec.load(cluster_dir(name) / "node")
        if real and spec is None:
            say(f"note: cluster {name} runs without a real node (started with --real-nodes 0); "
                f"`llmops cluster down --name {name}` and `up` again to get one")
        elif real and spec is not None and (node_gpus not in (None, spec.gpus)
                                            or node_gpu_product not in (None, spec.gpu_product)):
            say(f"note: the real node of cluster {name} keeps the {spec.gpus} GPUs (product {spec.gpu_product or 'none'}) "
                f"it was started with; `llmops cluster down --name {name}` and `up` again to change them")
        if real and spec is not None and not node.supervisor_alive(spec):
            say(f"the real node {spec.node_name} is not running; restarting it")
            node.stop(spec)
            _start_real_node(name, spec, _node_images(say), say)
            _wait_real_node(name, spec, say)
    else:
        netns = f"{name}-node"
        busy = node.netns_pids(netns) if not cluster_dir(name).exists() else []
        if busy:
            # Not ours: this cache has no cluster NAME, yet a node runs in that namespace (another
            # checkout's LLMOPS_CACHE, or a run whose folder was deleted). Tearing it down would stop it.
            raise LlmopsError(
                f"network namespace {netns} is in use by {len(busy)} running process(es) (e.g. pid {busy[0]}), but "
                f"this cache ({paths.cache_root()}) has no cluster {name}: another checkout's cluster of that name "
                f"runs there. Use another name and port block (--name, --port-base; $LLMOPS_CLUSTER, "
                f"$LLMOPS_CLUSTER_PORT_BASE), or stop it with `llmops cluster down --name {name}` from its own cache")
        if cluster_dir(name).exists() or node.netns_exists(netns):
            say(f"removing the leftovers of a stopped cluster {name}")
            down(name)
        spec = node.NodeSpec.for_cluster(name, port_base, cluster_dir(name), block=port_block(port_base),
                                         gpus=node.FAKE_GPUS if node_gpus is None else node_gpus,
                                         gpu_product=node_gpu_product or "") if real else None  # fmt: skip
        if spec is not None:
            node.preflight(spec)
            # The images go first: the node's sandbox needs pause, and a cold
            # build should not run while the control plane waits.
            mark = time.monotonic()
            archives = _node_images(say)
            timings["images_s"] = time.monotonic() - mark
        cluster_dir(name).mkdir(parents=True)
        _provider_file(name).write_text(provider)
        importing: concurrent.futures.Future[None] | None = None
        try:
            mark = time.monotonic()
            if provider == "local":
                _up_local(name, Ports.from_base(port_base), say, spec)
            else:
                _up_kind(name, say)
            timings["control_plane_s"] = time.monotonic() - mark
            mark = time.monotonic()
            _wait("the API server /readyz", API_READY_TIMEOUT_S, lambda: api_ready(name))
            timings["api_ready_s"] = time.monotonic() - mark
            if spec is not None:
                mark = time.monotonic()
                # Images beyond pause import while the nodes come up and the CRDs go in.
                importing = _start_real_node(name, spec, archives, say, background=True)
                timings["real_node_started_s"] = time.monotonic() - mark
            mark = time.monotonic()
            _add_nodes(name, provider, pools)
            if spec is not None:
                _wait_real_node(name, spec, say)
            timings["nodes_ready_s"] = time.monotonic() - mark
            if install_crds:
                mark = time.monotonic()
                count = _install_crds(name, "all" if install_crds is True else str(install_crds))
                timings["crds_s"] = time.monotonic() - mark
                say(f"installed {count} pinned CRDs")
            _install_operator_objects(name)
            if importing is not None:
                mark = time.monotonic()
                importing.result()
                timings["images_wait_s"] = time.monotonic() - mark
        except BaseException:
            if importing is not None:
                # Never stop the node under a running `ctr import`.
                with contextlib.suppress(BaseException):
                    importing.result()
            say(f"cluster {name} failed to come up; cleaning up (logs kept only in the error)")
            logs = _log_tail(name)
            if spec is not None:
                logs = "\n".join(filter(None, [logs, node.log_tail(spec)]))
            down(name)
            if logs:
                say(logs)
            raise
    timings["total_s"] = time.monotonic() - started
    info = status(name)
    info.timings = timings
    return info


def real_node_count(requested: int | None) -> int:
    raw = requested if requested is not None else os.environ.get(REAL_NODES_ENV, "1")
    try:
        count = int(raw)
    except ValueError:
        count = -1
    if count not in (0, 1):
        raise LlmopsError(f"real nodes: {raw!r} is not allowed; use 0 (kwok nodes only) or 1 (--real-nodes / ${REAL_NODES_ENV})")
    return count


def _node_images(say: Any) -> list[Path]:
    from llmops.cluster import images

    built = images.build_all(list(NODE_IMAGES), say)
    return [built[n] for n in NODE_IMAGES]


def _start_real_node(
    name: str, spec: node.NodeSpec, archives: Sequence[Path], say: Any, *, background: bool = False
) -> concurrent.futures.Future[None] | None:
    """Start the node and import ARCHIVES (the first, pause, at once: every pod's sandbox needs it).

    With BACKGROUND the others import in a thread; the caller waits on the
    returned future before anyone may start a pod from them.
    """
    from llmops.cluster import images

    say(f"starting the real node {spec.node_name}: netns {spec.netns}, node {spec.node_ip}, pods {spec.pod_cidr}, "
        f"services {spec.service_cidr}")
    node.create_network(spec)
    ca = _pki_dir(name) / "ca.crt"
    node.write_configs(spec, kubeconfig_path(name), ca, images.ref("pause"))
    pid = node.start(spec, say)
    # The pid, not supervisor_alive(): while nsenter and unshare exec into
    # the supervisor its /proc cmdline can read empty for a moment.
    node.wait_socket(spec.containerd_socket, node.START_TIMEOUT_S, "the node's containerd", lambda: procs.pid_alive(pid))
    mark = time.monotonic()
    node.import_images(spec, archives[:1])

    def rest() -> None:
        node.import_images(spec, archives[1:])
        say(f"imported {len(archives)} images into the node's containerd in {time.monotonic() - mark:.1f}s")

    if not background:
        rest()
        return None
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llmops-image-import")
    future = pool.submit(rest)
    pool.shutdown(wait=False)
    return future


def load_images(name: str, image_names: Sequence[str], say: Any = None) -> list[str]:
    """Build (or take from the cache) IMAGE_NAMES and import those missing into cluster NAME's real node.

    For images only some runs need (``locust``: the in-cluster load test),
    kept out of NODE_IMAGES so `cluster up` does not pay for them. Returns
    the references now on the node.
    """
    from llmops.cluster import images

    say = say or (lambda _m: None)
    spec = node.NodeSpec.load(cluster_dir(name) / "node")
    if spec is None or not node.supervisor_alive(spec):
        raise LlmopsError(f"images {', '.join(image_names)} run on the real node, and cluster {name} has none running: "
                          f"`llmops cluster up --name {name} --real-nodes 1`")
    archives = images.build_all(list(image_names), say)
    present = set(node.image_refs(spec))
    missing = [archives[n] for n in image_names if images.ref(n) not in present]
    if missing:
        mark = time.monotonic()
        node.import_images(spec, missing)
        say(f"imported {len(missing)} image(s) into {spec.node_name} in {time.monotonic() - mark:.1f}s")
    return [images.ref(n) for n in image_names]


def _wait_real_node(name: str, spec: node.NodeSpec, say: Any) -> None:
    def ready() -> bool:
        if not node.supervisor_alive(spec):
            raise LlmopsError(f"the real node's supervisor exited; logs under {spec.logs}")
        n = json.loads(kubectl(name, "get", "node", spec.node_name, "-o", "json", "--ignore-not-found") or "{}")
        st = n.get("status", {})
        is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
        return is_ready and st.get("allocatable", {}).get(GPU_RESOURCE) == str(spec.gpus)

    say(f"waiting for {spec.node_name} to be Ready with {spec.gpus} {GPU_RESOURCE} from its device plugin")
    _wait(f"real node {spec.node_name} Ready with {GPU_RESOURCE}", REAL_NODE_READY_TIMEOUT_S, ready)


def _up_local(name: str, ports: Ports, say: Any, real_node: node.NodeSpec | None = None) -> None:
    busy = [p for p in ports.all() if _port_busy(p)]
    if busy:
        raise LlmopsError(
            f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use; stop what holds them "
            f"(`llmops cluster down --name ...`) or pass --port-base"
        )
    config = kwokctl_config(ports, default_stages(), real_node)
    config_file = cluster_dir(name) / "kwokctl.yaml"
    config_file.write_text(yaml.safe_dump_all(config, sort_keys=False))
    kubeconfig_path(name).touch()
    say(f"starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok on 127.0.0.1:{ports.apiserver}-{ports.kwok_controller}")
    _run(
        [
            str(tools.require("kwokctl")),
            "--name", name,
            "--config", str(config_file),
            "create", "cluster",
            "--kubeconfig", str(kubeconfig_path(name)),
            "--timeout", "120s",
            "--wait", "0s",
        ],
        name,
        timeout=180,
    )


def _up_kind(name: str, say: Any) -> None:  # pragma: no cover - needs a Docker engine
    kind = shutil.which("kind") or str(paths.tool_path("kind"))
    if not Path(kind).exists():
        raise ToolError("provider kind needs the `kind` binary on PATH (https://kind.sigs.k8s.io)")
    workers = sum(p.count for p in DEFAULT_POOLS)
    config = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": {"apiServerAddress": "127.0.0.1", "apiServerPort": PORT_MIN},
        "nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * workers,
    }
    config_file = cluster_dir(name) / "kind.yaml"
    config_file.write_text(yaml.safe_dump(config))
    say(f"creating kind cluster {name} with {workers} workers")
    _run([kind, "create", "cluster", "--name", name, "--config", str(config_file),
          "--kubeconfig", str(kubeconfig_path(name)), "--wait", "120s"], name, timeout=600)


def _add_nodes(name: str, provider: str, pools: Sequence[NodePool]) -> None:
    if provider == "local":
        docs = node_manifests(pools, name)
        kubectl(name, "apply", "-f", "-", input_text=yaml.safe_dump_all(docs))
        names = [d["metadata"]["name"] for d in docs]
    else:  # pragma: no cover - needs a Docker engine
        names = _label_kind_workers(name, pools)

    def ready() -> bool:
        out = json.loads(kubectl(name, "get", "nodes", "-o", "json"))
        ok = {
            n["metadata"]["name"]
            for n in out["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        }
        return set(names) <= ok

    _wait(f"{len(names)} nodes Ready", NODES_READY_TIMEOUT_S, ready)


def _label_kind_workers(name: str, pools: Sequence[NodePool]) -> list[str]:  # pragma: no cover - needs Docker
    """Give kind's workers the pools' labels, taints and extended resources (status capacity patch)."""
    workers = sorted(
        n["metadata"]["name"]
        for n in json.loads(kubectl(name, "get", "nodes", "-o", "json"))["items"]
        if "node-role.kubernetes.io/control-plane" not in n["metadata"].get("labels", {})
    )
    it = iter(workers)
    for pool in pools:
        for _ in range(pool.count):
            node = next(it)
            labels = [f"{k}={v}" for k, v in {POOL_LABEL: pool.name, **pool.labels}.items()]
            kubectl(name, "label", "node", node, "--overwrite", *labels)
            for t in pool.taints:
                kubectl(name, "taint", "node", node, f"{t.key}={t.value}:{t.effect}", "--overwrite")
            if pool.gpus:
                patch = [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": str(pool.gpus)}]
                kubectl(name, "patch", "node", node, "--subresource=status", "--type=json", "-p", json.dumps(patch))
    return workers


CRD_SELECTIONS = ("all", "charts", "none")

# Namespaces the cluster-level operator installs create on a real cluster (the
# charts put objects there but, by default, do not create them). The GPU
# Operator's operands need hostPID/privileged, hence its Pod Security level.
OPERATOR_NAMESPACES: dict[str, str] = {"gpu-operator": "privileged"}


# What the GPU Operator's container toolkit registers on a real GPU cluster;
# GPU pods name it in runtimeClassName (kwok ignores the handler).
OPERATOR_RUNTIME_CLASSES: dict[str, str] = {"nvidia": "nvidia"}


def _install_operator_objects(name: str) -> None:
    """Namespaces and RuntimeClasses that the cluster-level operator installs would have created."""
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"pod-security.kubernetes.io/enforce": level}},
        }
        for ns, level in OPERATOR_NAMESPACES.items()
    ]
    docs += [
        {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": rc}, "handler": handler}
        for rc, handler in OPERATOR_RUNTIME_CLASSES.items()
    ]
    kubectl(name, "apply", "-f", "-", input_text=yaml.safe_dump_all(docs))


def chart_kinds(charts_dir: Path = paths.CHARTS_DIR) -> set[str]:
    """Every ``kind:`` a template in charts/ can render (a superset is fine: it only selects CRDs)."""
    kinds: set[str] = set()
    for tpl in charts_dir.glob("*/templates/**/*"):
        if tpl.is_file():
            kinds.update(re.findall(r"^kind:\s*([A-Za-z0-9]+)\s*$", tpl.read_text(errors="replace"), re.MULTILINE))
    return kinds


def crd_documents(selection: str = "all") -> list[dict[str, Any]]:
    """The pinned operator CRDs (KEDA, prometheus-operator, cert-manager, GPU Operator, Gateway API).

    ``charts`` keeps only the CRDs of kinds our charts can render: the API
    server still validates every custom resource the charts create, and
    prometheus-operator's Prometheus/Alertmanager/ThanosRuler schemas
    (2.6 of 3.8 MB) are not sent.
    """
    if selection not in CRD_SELECTIONS:
        raise LlmopsError(f"unknown CRD selection {selection!r}; use one of {', '.join(CRD_SELECTIONS)}")
    if selection == "none":
        return []
    from llmops.validate import crds  # the concerns engineer's pins: [tool.llmops.crds.*]

    docs = crds.crd_documents()
    if selection == "charts":
        wanted = chart_kinds()
        docs = [d for d in docs if d["spec"]["names"]["kind"] in wanted]
    return docs


def _install_crds(name: str, selection: str = "all") -> int:
    docs = crd_documents(selection)
    if not docs:
        return 0
    # One JSON List through `kubectl create`: the cluster is new, and client-side
    # apply cannot carry prometheus-operator's CRDs in its annotation anyway.
    data = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    kubectl(name, "create", "-f", "-", input_text=data, timeout=300)
    kubectl(name, "wait", "--for", "condition=Established", "crd", "--all",
            f"--timeout={CRDS_ESTABLISHED_TIMEOUT_S:.0f}s", timeout=CRDS_ESTABLISHED_TIMEOUT_S + 10)
    return len(docs)


def _port_busy(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _log_tail(name: str, lines: int = 10) -> str:
    out = []
    for log in sorted((_kwok_workdir(name) / "clusters" / name / "logs").glob("*.log")):
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
        if text:
            out.append(f"--- {log.name}\n" + "\n".join(text))
    return "\n".join(out)


def down(name: str = DEFAULT_NAME) -> list[str]:
    """Stop cluster NAME and remove every file of it. Returns what had to be force-killed."""
    cdir = cluster_dir(name)
    spec = node.NodeSpec.load(cdir / "node") or node.NodeSpec(name, 0, 0, cdir / "node")
    if not cdir.exists():
        # A killed run that lost its folder can still hold the node's namespace.
        return node.stop(spec) if node.netns_exists(spec.netns) else []
    provider = _provider_file(name).read_text().strip() if _provider_file(name).exists() else "local"
    pids = _pids(name)
    ports = _config_ports(name)
    killed: list[str] = []
    # The node first: its kubelet must not outlive the API server by much, and
    # its processes, mounts, cgroups and rules must go before the folder does.
    if (cdir / "node").exists() or node.netns_exists(spec.netns):
        killed += [f"node process {p}" for p in node.stop(spec)]
    if provider == "kind":  # pragma: no cover - needs Docker
        kind = shutil.which("kind") or str(paths.tool_path("kind"))
        subprocess.run([kind, "delete", "cluster", "--name", name], env=_env(name), capture_output=True, check=False)
    elif (_kwok_workdir(name) / "clusters" / name).exists():
        subprocess.run(
            [str(tools.require("kwokctl")), "--name", name, "delete", "cluster", "--kubeconfig", str(kubeconfig_path(name))],
            env=_env(name), capture_output=True, text=True, timeout=120, check=False,
        )
    # kwokctl stops components with SIGINT and moves on; make sure nothing survives.
    deadline = time.monotonic() + 10
    while any(procs.pid_alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for component, pid in pids.items():
        if procs.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            killed.append(component)
    # A Go process's leader thread can look exited while the process still
    # tears down its listeners: wait until none of the cluster's ports answers.
    deadline = time.monotonic() + 10
    while any(_port_busy(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(cdir, ignore_errors=True)
    if clusters_root().exists() and not any(clusters_root().iterdir()):
        clusters_root().rmdir()
    return killed


def _config_ports(name: str) -> list[int]:
    config = cluster_dir(name) / "kwokctl.yaml"
    if not config.exists():
        return []
    for doc in yaml.safe_load_all(config.read_text()):
        if doc and doc.get("kind") == "KwokctlConfiguration":
            return [int(v) for k, v in doc.get("options", {}).items() if k.endswith("Port")]
    return []


def leftovers(name: str = DEFAULT_NAME, pids: dict[str, int] | None = None) -> list[str]:
    """What a stopped cluster left behind (files, live processes, listening ports); empty when clean."""
    found = []
    if cluster_dir(name).exists():
        found.append(f"folder {cluster_dir(name)}")
    found += node.leftovers(node.NodeSpec(name, 0, 0, cluster_dir(name) / "node"))
    found += [f"process {c} (pid {p})" for c, p in (pids or {}).items() if procs.pid_alive(p)]
    return found


def status(name: str = DEFAULT_NAME) -> ClusterInfo:
    provider = _provider_file(name).read_text().strip() if _provider_file(name).exists() else "local"
    info = ClusterInfo(name, provider, kubeconfig_path(name))
    info.processes = {c: procs.pid_alive(p) for c, p in _pids(name).items()}
    spec = node.NodeSpec.load(cluster_dir(name) / "node")
    if spec is not None:
        info.processes["real-node"] = node.supervisor_alive(spec)
    if not api_ready(name):
        return info
    version = json.loads(kubectl(name, "version", "-o", "json", timeout=10))
    info.server_version = version.get("serverVersion", {}).get("gitVersion", "")
    for item in json.loads(kubectl(name, "get", "nodes", "-o", "json"))["items"]:
        meta, st = item["metadata"], item.get("status", {})
        info.nodes.append(
            {
                "name": meta["name"],
                "pool": meta.get("labels", {}).get(POOL_LABEL, ""),
                "ready": any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", [])),
                "cpu": st.get("allocatable", {}).get("cpu", ""),
                "gpus": st.get("allocatable", {}).get(GPU_RESOURCE, "0"),
                "taints": [f"{t['key']}:{t['effect']}" for t in item.get("spec", {}).get("taints", []) or []],
            }
        )
    return info


def has_real_node(name: str = DEFAULT_NAME) -> bool:
    """Whether cluster NAME runs a real node now (its supervisor is alive)."""
    spec = node.NodeSpec.load(cluster_dir(name) / "node")
    return spec is not None and node.supervisor_alive(spec)


def require_real_pods(name: str = DEFAULT_NAME, what: str = HELM_TEST_NEEDS) -> None:
    """Raise WHAT unless cluster NAME runs containers: a kind cluster, or a local one with its real node up.

    kwok nodes never run a container; nothing on them can pass or fail a
    script (there is no Stage that pretends so).
    """
    provider = _provider_file(name).read_text().strip() if _provider_file(name).exists() else "local"
    if provider == "kind" or has_real_node(name):
        return
    raise LlmopsError(f"{what} (cluster {name} has only kwok nodes, which run no container)")


def pids(name: str = DEFAULT_NAME) -> dict[str, int]:
    """Component -> pid of a running local cluster (for leftover checks)."""
    return _pids(name)


# ---------------------------------------------------------------------------
# One cluster shared by several processes (pytest-xdist workers, tiers)
# ---------------------------------------------------------------------------


def _lock(name: str) -> contextlib.AbstractContextManager[None]:
    return paths.cache_lock(f"cluster-{name}")


# Uses of shared() by this process, per cluster name (nested uses share the pid file).
_SHARED_USES: dict[str, int] = {}


@contextlib.contextmanager
def shared(
    name: str = DEFAULT_NAME,
    provider: str | None = "local",
    progress: Any = None,
    crds: str = "charts",
    port_base: int = PORT_MIN,
) -> Iterator[ClusterInfo]:
    """Use cluster NAME from several processes at once; the last user out stops it.

    A cluster that was already up before the first user arrived (e.g. from
    `llmops cluster up`) is left running. Users register as files named by
    pid, so a crashed user does not keep the cluster alive forever.
    """
    users = paths.cache_root() / "locks" / f"cluster-{name}.users"
    me = users / str(os.getpid())
    with _lock(name):
        users.mkdir(parents=True, exist_ok=True)
        for f in users.iterdir():
            if f.name.isdigit() and f.name != str(os.getpid()) and not procs.pid_alive(int(f.name)):
                f.unlink()  # a crashed user
        first = not any(f.name.isdigit() for f in users.iterdir())
        owned_marker = users / "owned"
        if first and not api_ready(name):
            owned_marker.touch()
        info = up(name, provider, install_crds=crds, port_base=port_base, progress=progress)
        me.touch()
        _SHARED_USES[name] = _SHARED_USES.get(name, 0) + 1
    try:
        yield info
    finally:
        with _lock(name):
            # One pid file per process: a nested use (a module fixture holding the cluster while a
            # test takes it again) must not unregister the process when the inner one ends.
            _SHARED_USES[name] -= 1
            if _SHARED_USES[name] == 0:
                del _SHARED_USES[name]
                me.unlink(missing_ok=True)
                # Another session may have cleaned the folder up (e.g. after
                # `llmops cluster down`); no folder means no other user.
                others = [f for f in users.iterdir() if f.name.isdigit()] if users.is_dir() else []
                if not others:
                    if owned_marker.exists():
                        down(name)
                    shutil.rmtree(users, ignore_errors=True)


# ---------------------------------------------------------------------------
# `llmops demo` step
# ---------------------------------------------------------------------------


def demo_step(args: argparse.Namespace) -> str:
    """Start (or reuse) the local cluster; the release step installs into it."""
    name = getattr(args, "cluster", DEFAULT_NAME) or DEFAULT_NAME
    info = up(name, getattr(args, "provider", None) or "auto", install_crds="charts",
              progress=lambda m: print(f"  {m}", flush=True))
    gpus = sum(int(n["gpus"]) for n in info.nodes)
    return (
        f"({info.provider}, Kubernetes {info.server_version}, {len(info.nodes)} nodes, {gpus} GPUs; "
        f"KUBECONFIG={info.kubeconfig})"
    )
