"""Cluster tier: one local cluster for the whole session (reused if already up).

``LLMOPS_CLUSTER`` names the cluster (default ``llmops``; ports from
``LLMOPS_CLUSTER_PORT_BASE``, default 16000). If its API already
answers, the session uses it and leaves it running; otherwise the session
starts it and takes it down at the end, checking nothing is left behind.
pytest-helm-charts' ``kube_cluster`` fixture connects to it through the
``kube_config`` fixture below.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops import cluster, poll
from llmops.cluster import images, node, release
from llmops.publish import oci, record, registry, signing

CLUSTER_NAME = os.environ.get("LLMOPS_CLUSTER", cluster.DEFAULT_NAME)
# Another cluster may hold 16000-16009: LLMOPS_CLUSTER_PORT_BASE picks another block of 10.
PORT_BASE = int(os.environ.get("LLMOPS_CLUSTER_PORT_BASE", str(cluster.PORT_MIN)))


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[cluster.ClusterInfo]:
    """The session's cluster, shared with other pytest-xdist workers; the last one out stops it."""
    with cluster.shared(CLUSTER_NAME, "local", progress=lambda m: print(f"[cluster] {m}"), port_base=PORT_BASE) as info:
        yield info


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> signing.SigningKey:
    """A signing key generated for this session in a temp GNUPGHOME (never a key of the repository)."""
    return signing.generate(tmp_path_factory.mktemp("gnupg"))


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registry.LocalRegistry]:
    """The pinned CNCF distribution registry on a free port of 127.0.0.1:16100-16109."""
    with registry.LocalRegistry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="session")
def published(oci_registry: registry.LocalRegistry, signing_key: signing.SigningKey,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[oci.Published]]:
    """Every recorded release (from its commit) under oci://.../charts, the working tree under oci://.../head."""
    work = tmp_path_factory.mktemp("publish")
    out = {rec.version: oci.publish(oci_registry.url("charts"), version=rec.version, key=signing_key, work=work)
           for rec in record.load()}
    out["head"] = oci.publish(oci_registry.url("head"), version=None, key=signing_key, work=work)
    return out


@pytest.fixture(scope="module")
def kube_config(local_cluster: cluster.ClusterInfo) -> str:
    """Overrides pytest-helm-charts' option-based fixture: our session cluster's kubeconfig."""
    return str(local_cluster.kubeconfig)


@pytest.fixture(params=["helm3", "helm4"])
def helm_bin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def namespace(local_cluster: cluster.ClusterInfo) -> Iterator[str]:
    """A fresh PSA-restricted namespace, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    release.ensure_namespace(name, cluster_name=local_cluster.name)
    yield name
    cluster.kubectl(local_cluster.name, "delete", "namespace", name, "--wait=false")


def kubectl_json(info: cluster.ClusterInfo, *args: str) -> Any:
    import json

    return json.loads(cluster.kubectl(info.name, *args, "-o", "json"))


def wait_until(what: str, timeout: float, probe: Any, describe: Any = None, interval: float = 0.25) -> Any:
    """Poll PROBE until truthy; on timeout fail the test saying what we waited for and, if given, DESCRIBE() of the state."""
    return poll.until(what, probe, timeout=timeout, interval=interval, describe=describe, error=AssertionError)


# ---------------------------------------------------------------------------
# A small chart generated per test, for lifecycle checks that must not depend
# on the product charts (it has what they have: a CPU Deployment, a GPU
# Deployment with a configurable rollout strategy, a helm test hook and a
# resource kept on uninstall).
# ---------------------------------------------------------------------------

_RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
}
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}


def _real_node_placement(indent: str) -> str:
    """nodeSelector and toleration that put a pod on the real node (its pool label and taint)."""
    t = node.REAL_NODE_TAINT
    return (f"{indent}nodeSelector: {{{node.POOL_LABEL}: {node.NODE_LABEL_POOL}}}\n"
            f"{indent}tolerations: [{{key: {t['key']}, operator: Equal, value: \"{t['value']}\", effect: {t['effect']}}}]\n")


# The CPU Deployment serves its `message` value over HTTP; the helm test reads it through the Service.
_SERVE = """import http.server, os
body = os.environ["MESSAGE"].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("", 8080), Handler).serve_forever()
"""
_CHECK = """import sys, urllib.request
want = {{ .Values.expectMessage | default .Values.message | quote }}
got = urllib.request.urlopen("http://{{ .Release.Name }}-cpu:8080/", timeout=10).read().decode()
print(f"{{ .Release.Name }}-cpu served {got!r}, the test expects {want!r}")
sys.exit(0 if got == want else 1)
"""


def _block(text: str, indent: str) -> str:
    return "".join(f"{indent}{line}\n" for line in text.splitlines())


def _deployment(name: str, gpu: bool) -> str:
    resources = (
        "requests: {cpu: 100m, memory: 64Mi, nvidia.com/gpu: {{ .Values.gpusPerPod }}}\n"
        "            limits: {memory: 64Mi, nvidia.com/gpu: {{ .Values.gpusPerPod }}}"
        if gpu
        else "requests: {cpu: 20m, memory: 32Mi}\n            limits: {memory: 64Mi}"
    )
    # GPU pods land on the kwok H100 pool (placement only); CPU pods really run on the real node.
    scheduling = (
        "      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]\n"
        "      nodeSelector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}\n"
        if gpu
        else _real_node_placement("      ")
    )
    replicas = ".Values.gpuReplicas" if gpu else ".Values.cpuReplicas"
    strategy = (
        "  strategy:\n"
        "    type: {{ .Values.strategy.type }}\n"
        "    {{- if eq .Values.strategy.type \"RollingUpdate\" }}\n"
        "    rollingUpdate: {maxSurge: {{ .Values.strategy.maxSurge }}, maxUnavailable: {{ .Values.strategy.maxUnavailable }}}\n"
        "    {{- end }}\n"
        if gpu
        else ""
    )
    image = "registry.example/app:{{ .Chart.AppVersion }}" if gpu else images.ref("python")
    run = "" if gpu else (
        "          args: [\"-c\", {{ .Files.Get \"files/serve.py\" | quote }}]\n"
        "          env: [{name: MESSAGE, value: {{ .Values.message | quote }}}]\n"
        "          ports: [{name: http, containerPort: 8080}]\n"
        "          readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}\n"
    )
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ .Release.Name }}}}-{name}
  labels: {{app: {{{{ .Release.Name }}}}-{name}, gpu: "{str(gpu).lower()}"}}
spec:
  replicas: {{{{ {replicas} }}}}
{strategy}  selector:
    matchLabels: {{app: {{{{ .Release.Name }}}}-{name}}}
  template:
    metadata:
      labels: {{app: {{{{ .Release.Name }}}}-{name}, gpu: "{str(gpu).lower()}"}}
      annotations: {{message: {{{{ .Values.message | quote }}}}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {yaml.safe_dump(_RESTRICTED_POD["securityContext"], default_flow_style=True).strip()}
{scheduling}      containers:
        - name: main
          image: {image}
{run}          securityContext: {yaml.safe_dump(_RESTRICTED_CONTAINER, default_flow_style=True).strip()}
          resources:
            {resources}
"""


def write_probe_chart(root: Path, version: str = "0.1.0") -> Path:
    """A chart with a CPU Deployment on the real node, a GPU Deployment on kwok's H100 pool, a kept
    ConfigMap and a helm test that reads the CPU Deployment's message through its Service (real script)."""
    chart = root / f"lifecycle-probe-{version}"
    (chart / "templates").mkdir(parents=True)
    (chart / "files").mkdir()
    (chart / "files" / "serve.py").write_text(_SERVE)
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "lifecycle-probe", "version": version, "appVersion": version})
    )
    (chart / "values.yaml").write_text(
        yaml.safe_dump(
            {
                "cpuReplicas": 1,
                "gpuReplicas": 1,
                "gpusPerPod": 1,
                "message": "hello",
                # The helm test passes when the served message equals this (empty: `message`).
                "expectMessage": "",
                "strategy": {"type": "RollingUpdate", "maxSurge": 0, "maxUnavailable": 1},
            }
        )
    )
    (chart / "templates" / "cpu-deployment.yaml").write_text(_deployment("cpu", gpu=False))
    (chart / "templates" / "cpu-service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-cpu\n"
        "spec:\n  selector: {app: {{ .Release.Name }}-cpu}\n  ports: [{name: http, port: 8080, targetPort: http}]\n"
    )
    (chart / "templates" / "gpu-deployment.yaml").write_text(_deployment("gpu", gpu=True))
    (chart / "templates" / "kept-configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-kept\n"
        "  annotations: {helm.sh/resource-policy: keep}\ndata: {note: kept on uninstall}\n"
    )
    (chart / "templates" / "test-pod.yaml").write_text(
        f"""apiVersion: v1
kind: Pod
metadata:
  name: {{{{ .Release.Name }}}}-test
  labels: {{app.kubernetes.io/instance: {{{{ .Release.Name }}}}}}
  annotations: {{helm.sh/hook: test, helm.sh/hook-delete-policy: "before-hook-creation,hook-succeeded"}}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {yaml.safe_dump(_RESTRICTED_POD["securityContext"], default_flow_style=True).strip()}
{_real_node_placement("  ")}  containers:
    - name: probe
      image: {images.ref("python")}
      args:
        - -c
        - |
{_block(_CHECK, "          ")}      securityContext: {yaml.safe_dump(_RESTRICTED_CONTAINER, default_flow_style=True).strip()}
      resources: {{requests: {{cpu: 10m, memory: 16Mi}}, limits: {{memory: 32Mi}}}}
"""
    )
    return chart


@pytest.fixture
def probe_chart(tmp_path: Path) -> Path:
    return write_probe_chart(tmp_path)


def kubelet_started(info: cluster.ClusterInfo, namespace: str, name_part: str) -> list[str]:
    """Pods whose name contains NAME_PART and whose container a real kubelet started (its events).

    Events outlive the pod (a passing `helm test` pod is deleted at once);
    kwok never reports them.
    """
    events = kubectl_json(info, "get", "events", "-n", namespace, "--field-selector", "reason=Started")["items"]
    return sorted({
        e["involvedObject"]["name"] for e in events
        if name_part in e["involvedObject"]["name"]
        and (e.get("source", {}).get("component") == "kubelet" or e.get("reportingComponent") == "kubelet")
    })
