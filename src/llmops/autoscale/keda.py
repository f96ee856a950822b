"""The KEDA operator and metrics adapter, built from the pinned module, run on the host.

Both run out of cluster from the local cluster's kubeconfig:

- the operator (``keda-operator``) watches ScaledObjects, creates their
  HPAs, does the 0<->1 activation itself and serves the trigger values to
  the adapter over gRPC (TLS from ``--cert-dir``);
- the adapter (``keda-adapter``) is an aggregated API server for
  ``external.metrics.k8s.io``; the HPA controller reads the triggers there.

Registering a host process as an aggregated API: the APIService points at
an ``ExternalName`` Service whose ``externalName`` is ``127.0.0.1``. The
aggregator resolves ExternalName Services to ``<externalName>:<APIService
port>`` (k8s.io/apiserver ``proxy.ResolveCluster``) and skips the endpoints
check it does for ClusterIP Services, so the real kube-apiserver dials the
adapter on loopback. It verifies the adapter's certificate against the
APIService ``caBundle`` with server name ``<service>.<namespace>.svc``, which
our certificate carries. (An Endpoints/EndpointSlice to 127.0.0.1 does not
work: API validation rejects loopback endpoint addresses.) The aggregator
authenticates to the adapter with kwokctl's proxy client certificate, which
the adapter's delegated authentication accepts through the cluster CA.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

from llmops import poll, procs, tools
from llmops.autoscale import certs
from llmops.errors import LlmopsError

KEDA_NAMESPACE = "keda"
ADAPTER_SERVICE = "keda-metrics-apiserver"
OPERATOR_SERVICE = "keda-operator"
APISERVICE = "v1beta1.external.metrics.k8s.io"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class KedaPorts:
    adapter: int  # aggregated API (HTTPS), dialed by kube-apiserver
    adapter_metrics: int  # adapter's own /metrics (binds every interface; KEDA offers no flag)
    grpc: int  # operator's metrics service, dialed by the adapter
    operator_metrics: int
    operator_health: int


def keda_module_dir() -> Path:
    spec = tools.load_specs()["keda"]
    return tools.go_module_dir(spec.get("module"), spec.version)


def crd_documents() -> list[Path]:
    """The CRDs of the exact KEDA version whose binaries run (not a second pin)."""
    # keda.sh and eventing.keda.sh: the operator waits for caches of both groups and exits without them.
    return sorted((keda_module_dir() / "config" / "crd" / "bases").glob("*.yaml"))


def http_add_on_crd_documents() -> list[Path]:
    """The HTTP add-on's CRDs (HTTPScaledObject), from the exact module version its image's binaries come from."""
    spec = tools.load_specs()["keda-http-add-on"]
    root = tools.go_module_dir(spec.get("module"), spec.version)
    files = sorted((root / "config" / "crd" / "bases").glob("http.keda.sh_*.yaml"))
    if not files:
        # An empty list would apply nothing and leave the chart's HTTPScaledObjects unknown to the API server.
        raise LlmopsError(f"{root}/config/crd/bases holds no http.keda.sh_*.yaml; did the add-on move its CRDs?")
    return files


@dataclass
class _Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as fh:
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)  # fmt: skip

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        procs.stop_process(self.process, STOP_TIMEOUT_S)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@dataclass
class KedaStack:
    """Operator + adapter + APIService registration against one cluster."""

    kubeconfig: Path
    workdir: Path
    ports: KedaPorts
    watch_namespace: str = ""
    procs: list[_Proc] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            WATCH_NAMESPACE=self.watch_namespace,
            KEDA_CLUSTER_OBJECT_NAMESPACE=KEDA_NAMESPACE,
            POD_NAMESPACE=KEDA_NAMESPACE,
            KEDA_HTTP_DEFAULT_TIMEOUT="3000",
        )
        return env

    def start(self, api: client.ApiClient) -> KedaStack:
        started = time.monotonic()
        svc = f"{ADAPTER_SERVICE}.{KEDA_NAMESPACE}"
        op = f"{OPERATOR_SERVICE}.{KEDA_NAMESPACE}"
        cert_dir = certs.generate(
            self.workdir / "certs", [f"{svc}.svc", svc, f"{op}.svc", op, f"{op}.svc.cluster.local", "localhost"]
        )
        self._register(api, cert_dir)
        operator, adapter = tools.require("keda-operator"), tools.require("keda-adapter")
        env = self._env()
        self.procs = [
            _Proc("keda-operator", [
                str(operator),
                f"--cert-dir={cert_dir.path}",
                f"--ca-dir={cert_dir.path}",
                f"--metrics-bind-address=127.0.0.1:{self.ports.operator_metrics}",
                f"--health-probe-bind-address=127.0.0.1:{self.ports.operator_health}",
                f"--metrics-service-bind-address=127.0.0.1:{self.ports.grpc}",
                "--leader-elect=false",
                "--enable-cert-rotation=false",
                "--enable-webhook-patching=false",
                "--enable-apiservice-patching=false",
                "--zap-log-level=info",
            ], env, self.workdir / "keda-operator.log"),
            _Proc("keda-adapter", [
                str(adapter),
                f"--secure-port={self.ports.adapter}",
                "--bind-address=127.0.0.1",
                f"--cert-dir={cert_dir.path}",
                f"--tls-cert-file={cert_dir.cert}",
                f"--tls-private-key-file={cert_dir.key}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--kubeconfig={self.kubeconfig}",
                f"--lister-kubeconfig={self.kubeconfig}",
                f"--metrics-service-address=127.0.0.1:{self.ports.grpc}",
                f"--metrics-service-grpc-authority={op}.svc.cluster.local",
                f"--port={self.ports.adapter_metrics}",
                "--v=0",
            ], env, self.workdir / "keda-adapter.log"),
        ]  # fmt: skip
        for proc in self.procs:
            proc.start()
        try:
            self._wait_available(api)
        except BaseException:
            self.stop()
            raise
        self.timings["keda_ready_s"] = time.monotonic() - started
        return self

    def _register(self, api: client.ApiClient, cert_dir: certs.CertDir) -> None:
        core = client.CoreV1Api(api)
        _create_or_replace(lambda: core.create_namespace({"metadata": {"name": KEDA_NAMESPACE}}), None)
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": ADAPTER_SERVICE, "namespace": KEDA_NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "llmops-stack", "app.kubernetes.io/component": "keda-host"}},
            "spec": {"type": "ExternalName", "externalName": "127.0.0.1",
                     "ports": [{"name": "https", "port": self.ports.adapter, "protocol": "TCP"}]},
        }  # fmt: skip
        _create_or_replace(
            lambda: core.create_namespaced_service(KEDA_NAMESPACE, service),
            lambda: core.replace_namespaced_service(ADAPTER_SERVICE, KEDA_NAMESPACE, _with_version(
                core.read_namespaced_service(ADAPTER_SERVICE, KEDA_NAMESPACE), service)),
        )  # fmt: skip
        reg = client.ApiregistrationV1Api(api)
        apiservice = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {"namespace": KEDA_NAMESPACE, "name": ADAPTER_SERVICE, "port": self.ports.adapter},
                "caBundle": base64.b64encode(cert_dir.ca.read_bytes()).decode(),
            },
        }
        _create_or_replace(
            lambda: reg.create_api_service(apiservice),
            lambda: reg.replace_api_service(APISERVICE, _with_version(reg.read_api_service(APISERVICE), apiservice)),
        )

    def _wait_available(self, api: client.ApiClient) -> None:
        reg = client.ApiregistrationV1Api(api)
        message = ""

        def available() -> bool:
            nonlocal message
            for proc in self.procs:
                if not proc.alive():
                    raise LlmopsError(f"{proc.name} exited (code {proc.process.returncode if proc.process else '?'}); "
                                      f"log {proc.log}:\n{proc.tail()}")  # fmt: skip
            status = reg.read_api_service_status(APISERVICE).status
            for cond in (status.conditions or []) if status else []:
                if cond.type == "Available":
                    if cond.status == "True":
                        return True
                    message = f"{cond.reason}: {cond.message}"
            return False

        poll.until(f"APIService {APISERVICE} to be Available", available, timeout=READY_TIMEOUT_S, interval=0.5,
                   describe=lambda: f"{message}; adapter log {self.procs[1].log}:\n{self.procs[1].tail()}")

    def alive(self) -> bool:
        return bool(self.procs) and all(p.alive() for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.alive() and proc.process is not None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.procs:
            proc.stop()

    def unregister(self, api: client.ApiClient) -> None:
        """Remove the APIService so the cluster's discovery does not keep failing on a stopped adapter."""
        try:
            client.ApiregistrationV1Api(api).delete_api_service(APISERVICE)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _with_version(current: Any, desired: dict[str, Any]) -> dict[str, Any]:
    out = dict(desired)
    out["metadata"] = {**desired["metadata"], "resourceVersion": current.metadata.resource_version}
    return out


def _create_or_replace(create: Any, replace: Any) -> None:
    try:
        create()
    except ApiException as exc:
        if exc.status != 409:
            raise
        if replace is not None:
            replace()
